"""`[mqtt]`: credentials and TLS read from the config, topics checked with their line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from daemon.config import ConfigError, load
from daemon.mqtt.bridge import settings_from
from daemon.pluginhost import PluginHost


def plugins() -> PluginHost:
    host = PluginHost()
    host.load(entry_points=False)
    return host


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "gridhall.toml"
    path.write_text(textwrap.dedent(body))
    return path


def test_tls_and_credentials(tmp_path: Path) -> None:
    config = load(
        write(
            tmp_path,
            """
            [mqtt]
            url = "mqtts://broker.hall.lan"
            base_topic = "hall/gridhall"
            username = "gridhall"
            password = "secret"
            ca_file = "certs/ca.pem"
            cert_file = "/etc/gridhall/client.pem"
            key_file = "certs/client.key"
            protocol = "5"
            """,
        ),
        plugins(),
    )
    assert config.mqtt is not None
    s = settings_from(config.mqtt, config.resolve)
    assert (s.host, s.port, s.tls) == ("broker.hall.lan", 8883, True)
    assert s.ca_file == tmp_path / "certs" / "ca.pem"  # relative to the config's folder
    assert s.cert_file == Path("/etc/gridhall/client.pem")
    assert (s.username, s.password, s.protocol) == ("gridhall", "secret", "5")
    assert s.client_id == "gridhall-hall-gridhall"


@pytest.mark.parametrize("topic", ["hall/#", "+", "/hall", "hall/"])
def test_a_base_topic_with_wildcards_is_refused_at_its_line(tmp_path: Path, topic: str) -> None:
    path = write(tmp_path, f'\n[mqtt]\nurl = "mqtt://127.0.0.1:1883"\nbase_topic = "{topic}"\n')
    with pytest.raises(ConfigError) as err:
        load(path, plugins())
    assert err.value.issues[0].line == 4
    assert "bad topic" in err.value.issues[0].message
