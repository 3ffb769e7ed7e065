"""The four classes through the API, and each threshold of the rule on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from plugins.tickets.measures_config import MeasuresConfig, RankingRule
from plugins.tickets.ranking import classify
from plugins.tickets.synthetic import Fate
from plugins.tickets.workflow import EVALUATED
from tests.measures_support import add, config, get, local, measured
from tests.support import running

HOUR, DAY = 3600, 86400


def month_of(
    dept: str, month: int, n: int, on_time: int, satisfied: int, reworks: int = 0, first_id: int = 0
) -> list[Fate]:
    """n tickets of `dept` due in the month, all responded and closed, `on_time` of
    them in time, every one evaluated, `satisfied` of them satisfied; the score is
    0.2 * 100 + 0.2 * 100 + 0.3 * on-time % + 0.3 * satisfaction % - reworks' penalty."""
    fates = []
    for i in range(n):
        created = local(2026, month, 2) + i * HOUR
        due = created + 5 * DAY
        fates.append(
            Fate(
                first_id + i,
                created,
                due,
                EVALUATED,
                department=dept,
                closed_at=due - HOUR if i < on_time else due + HOUR,
                satisfaction="satisfied" if i < satisfied else "unsatisfied",
                reworks=1 if i < reworks else 0,
            )
        )
    return fates


UNITS = {
    # dept: (February's on-time and satisfied of 10, March's, March's reworks)
    "a-top": ((10, 10), (10, 10), 0),  # 100: advanced
    "b-better": ((5, 6), (6, 7), 0),  # 73 -> 79: improving
    "c-same": ((7, 7), (7, 7), 0),  # 82 -> 82: rectify
    "d-low": ((2, 3), (2, 3), 0),  # 55: govern
    "f-up-low": ((0, 0), (3, 3), 0),  # 40 -> 58: up 18, still govern
    "g-rework2": ((10, 10), (10, 10), 2),  # 100 - 0.5 * 20 = 90: advanced, just
    "g-rework3": ((10, 10), (10, 10), 3),  # 100 - 15 = 85: rectify
}


async def test_the_four_classes(tmp_path: Path) -> None:
    async with measured(tmp_path) as hall:
        fates: list[Fate] = []
        for dept, (feb, mar, reworks) in UNITS.items():
            fates += month_of(dept, 2, 10, *feb, first_id=len(fates) + 1)
            fates += month_of(dept, 3, 10, *mar, reworks=reworks, first_id=len(fates) + 1)
        fates += month_of("e-few", 3, 4, 4, 4, first_id=len(fates) + 1)
        await add(hall, fates)
        body = await get(hall, "/api/v1/tickets/measures/ranking?month=2026-03&by=department")
        assert body["previous"]["label"] == "2026-02"
        got = {u["key"]: u for u in body["units"]}
        assert {k: got[k]["class"] for k in UNITS} == {
            "a-top": "advanced",
            "b-better": "improving",
            "c-same": "rectify",
            "d-low": "govern",
            "f-up-low": "govern",
            "g-rework2": "advanced",
            "g-rework3": "rectify",
        }
        assert got["b-better"]["score"] == 79.0 and got["b-better"]["previous_score"] == 73.0
        assert got["g-rework2"]["score"] == 90.0 and got["g-rework3"]["score"] == 85.0
        assert got["a-top"]["label"] == "先进" and got["d-low"]["label"] == "治理"
        assert got["e-few"]["class"] is None and "fewer than 5" in got["e-few"]["reason"]
        # Best first, equal scores share a rank, the unranked last.
        order = [u["key"] for u in body["units"]]
        assert order[0] == "a-top" and order[-1] == "e-few"
        assert got["g-rework2"]["rank"] == 2 and got["g-rework3"]["rank"] == 3

    # The thresholds are the district's: at 95, 90 is no longer advanced.
    extra = "[tickets.measures.ranking]\nadvanced_min = 95.0\nmin_due = 3\n"
    async with running(config(tmp_path, extra)) as hall:
        body = await get(hall, "/api/v1/tickets/measures/ranking?month=2026-03")
        got = {u["key"]: u for u in body["units"]}
        assert got["g-rework2"]["class"] == "rectify"
        assert got["e-few"]["class"] == "advanced"


@pytest.mark.parametrize(
    "score,previous,expected",
    [
        (90.0, None, "advanced"),
        (89.99, None, "rectify"),
        (70.0, None, "rectify"),
        (69.99, None, "govern"),
        (69.99, 50.0, "govern"),
        (80.0, 77.0, "improving"),
        (80.0, 77.01, "rectify"),
        (80.0, None, "rectify"),
    ],
)
def test_each_threshold_on_both_sides(score: float, previous: float | None, expected: str) -> None:
    assert classify(score, previous, RankingRule()) == expected


def test_a_bad_rule_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown rate 'speed'"):
        MeasuresConfig.model_validate({"ranking": {"weights": {"speed": 1}}})
    with pytest.raises(ValidationError, match="govern_below is above advanced_min"):
        RankingRule(advanced_min=60, govern_below=70)


async def test_a_bad_rule_in_the_config_names_its_line(tmp_path: Path) -> None:
    from daemon.config import ConfigError, load
    from daemon.pluginhost import PluginHost

    plugins = PluginHost()
    plugins.load(entry_points=False)
    path = config(tmp_path, "[tickets.measures.ranking]\nweights = { speed = 1.0 }\n")
    with pytest.raises(ConfigError) as err:
        load(path, plugins)
    assert "unknown rate 'speed'" in str(err.value)
