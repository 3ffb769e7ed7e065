"""What a control surface needs to draw a device, beyond its state: a matrix's size
and tie modes, a board's channels and its sequence, a screen's input names.

A panel cannot read these from the state alone (a matrix's inputs are nowhere in its
routes; a projector reports only the input it is on), and the drivers know them from
their options or from the device (an Extron asked with `I`). One description serves
the API (`controls` on every device) and Home Assistant discovery.
"""

from __future__ import annotations

from typing import Any

from daemon.kinds import Kind, State, known_count, matrix_size


def controls(kind: Kind, options: Any, driver: Any, state: State) -> dict[str, Any]:
    """The device's controls by kind; `driver` may be None (discovery's tests)."""
    if kind is Kind.MATRIX:
        inputs, outputs = matrix_size(options, driver, state)
        return {
            "inputs": inputs,
            "outputs": outputs,
            # The `mode`s `route` takes: a KVM's access modes, a switcher's breakaway.
            "modes": list(getattr(driver, "route_modes", ())),
        }
    if kind is Kind.POWER:
        sequence = getattr(options, "sequence", None) or []
        channels = len(state.get("channels") or {})
        return {
            "channels": known_count(getattr(options, "channels", None), channels),
            "sequence": [step.channel for step in sequence],
        }
    if kind is Kind.SCREEN:
        return {"inputs": sorted(getattr(options, "inputs", None) or {})}
    return {}
