# gridhall: `make run` starts the demo, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)
CONFIG ?= etc/gridhall.toml

.PHONY: run test lint bench soak test-deps clean

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "gridhall needs Python 3.11 or newer"; exit 1; }
	@$(PY) -m venv --help >/dev/null 2>&1 && $(PY) -m ensurepip --version >/dev/null 2>&1 || \
		{ echo "python3-venv is missing: apt-get install python3-venv"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	@echo
	@echo "  gridhall demo: the touch panel on http://127.0.0.1:8080/  (API docs: /docs)"
	@echo "  Get an admin token in another terminal:"
	@echo "    $(BIN)/gridhall token create --role admin --name $${USER:-admin} -c $(CONFIG)"
	@echo "  sign in to the panel with it, or: curl -H \"Authorization: Bearer <token>\" http://127.0.0.1:8080/api/v1/devices"
	@echo
	$(BIN)/gridhall run -c $(CONFIG)

# Test peers the suite starts itself (a private Mosquitto, socat ptys, headless Chromium
# for the panel's browser tests, with a CJK font for its Chinese), as tool:package.
TEST_PEERS := mosquitto:mosquitto socat:socat chromium:chromium chromedriver:chromium-driver
test-deps:
	@missing=""; for peer in $(TEST_PEERS); do tool=$${peer%%:*}; pkg=$${peer#*:}; \
		command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$pkg"; done; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else echo "install these first: sudo apt-get install$$missing"; exit 1; fi; \
	fi

test: $(STAMP) test-deps
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Every bench/bench_*.py, then bench/RESULTS.md from what they recorded (a bench that
# fails is reported, not the end of the run). The soak runs 2 minutes here, a quick
# look; `make soak` is its 30-minute run. BENCH_NOTE="..." adds a line about the run.
bench: $(STAMP)
	$(BIN)/python bench/report.py

soak: $(STAMP)
	$(BIN)/python bench/bench_soak.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
