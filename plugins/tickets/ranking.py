"""The four classes units are ranked in: 先进 advanced, 进步 improving, 整改 rectify,
治理 govern.

The rule (`RankingRule`, `[tickets.measures.ranking]`; docs/tickets-measures.md):

1. A unit with fewer than `min_due` tickets due in the period is not ranked: a rate
   over three tickets says more about luck than about the unit.
2. Its score is the weighted mean of its rates in percent (a rate with no
   denominator drops out, the others' weights fill its place), less
   `rework_penalty` points per rework per 100 tickets due: a rework is the handler's.
3. Its class, checked in this order: `advanced` when the score is at least
   `advanced_min`; `govern` when it is below `govern_below`, however it moved; else
   `improving` when it rose at least `improving_margin` points over the previous
   period (which it must have been ranked in); else `rectify`.

Units are listed best first with a rank (equal scores share one).
"""

from __future__ import annotations

from typing import Any

from plugins.tickets.measures_config import RankingRule

CLASSES = {"advanced": "先进", "improving": "进步", "rectify": "整改", "govern": "治理"}


def score(unit: dict[str, Any], rule: RankingRule) -> float | None:
    """The composite score, or None when the unit has no rate to score."""
    present = [
        (weight, unit["rates"][name]["percent"])
        for name, weight in rule.weights.items()
        if weight > 0 and unit["rates"][name]["percent"] is not None
    ]
    if not present:
        return None
    mean = sum(w * p for w, p in present) / sum(w for w, _ in present)
    due = unit["counts"]["due"]
    penalty = rule.rework_penalty * 100 * unit["counts"]["reworks"] / due if due else 0.0
    return round(max(0.0, float(mean) - penalty), 2)


def classify(current: float, previous: float | None, rule: RankingRule) -> str:
    if current >= rule.advanced_min:
        return "advanced"
    if current < rule.govern_below:
        return "govern"
    if previous is not None and current - previous >= rule.improving_margin:
        return "improving"
    return "rectify"


def _ranked_score(unit: dict[str, Any], rule: RankingRule) -> float | None:
    return score(unit, rule) if unit["counts"]["due"] >= rule.min_due else None


def rank(
    units: list[dict[str, Any]], previous: list[dict[str, Any]], rule: RankingRule
) -> list[dict[str, Any]]:
    """Each unit of one dimension with its score, class and rank, best first; the
    units not ranked follow, with the reason."""
    before = {u["key"]: _ranked_score(u, rule) for u in previous}
    ranked: list[dict[str, Any]] = []
    unranked: list[dict[str, Any]] = []
    for unit in units:
        entry = {
            "key": unit["key"],
            "name": unit["name"],
            "due": unit["counts"]["due"],
            "reworks": unit["counts"]["reworks"],
            "rates": {name: r["percent"] for name, r in unit["rates"].items()},
            "previous_score": before.get(unit["key"]),
        }
        current = _ranked_score(unit, rule)
        if current is None:
            why = (
                f"fewer than {rule.min_due} tickets due"
                if unit["counts"]["due"] < rule.min_due
                else "no rate to score"
            )
            unranked.append(
                {**entry, "rank": None, "class": None, "label": None, "score": None, "reason": why}
            )
            continue
        cls = classify(current, entry["previous_score"], rule)
        ranked.append({**entry, "score": current, "class": cls, "label": CLASSES[cls]})
    ranked.sort(key=lambda e: (-e["score"], str(e["key"])))
    for i, entry in enumerate(ranked):
        same = i > 0 and ranked[i - 1]["score"] == entry["score"]
        entry["rank"] = ranked[i - 1]["rank"] if same else i + 1
    return ranked + unranked
