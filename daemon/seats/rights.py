"""Who may reach which computer, and in which modes: the `allow` of each `[[computer]]`.

`Host.act` asks `check` before every matrix action, whatever its source (the API, a
seat, a layout, a scene, a schedule, MQTT), so a route to a computer outside the
caller's rights is refused (403, audited) before anything reaches the matrix. An entry
naming a role grants it to every role that includes it (admin includes every role); an
entry naming an operator grants it to the token of that name. Actions without a person
behind them (MQTT, schedules) act with the `operator` role under their own name
(`mqtt`, `schedule`), so a secure computer is reached that way only when its `allow`
names that source as an operator.

An input no `[[computer]]` names has no rule: anyone who may act may route it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from daemon.auth import Roles
from daemon.seats.config import MODES, SHARE_MODES, ComputerConfig, Mode, ShareMode

SOURCE_ROLE = "operator"  # the role of actions no token stands behind (MQTT, schedules)


class Rights:
    def __init__(self, computers: Iterable[ComputerConfig], roles: Roles) -> None:
        self.roles = roles
        self.replace(computers)

    def replace(self, computers: Iterable[ComputerConfig]) -> None:
        """Take the config's computers (at start and on SIGHUP)."""
        self.by_id = {c.id: c for c in computers}
        self.by_input = {(c.matrix, c.input): c for c in self.by_id.values()}

    def computer_at(self, matrix: str, input_: int | None) -> ComputerConfig | None:
        return None if not input_ else self.by_input.get((matrix, input_))

    def modes(self, computer: ComputerConfig, who: str, role: str | None) -> list[Mode]:
        """The modes `who` (with `role`) may connect `computer` in, in MODES' order."""
        granted: set[str] = set()
        for right in self._rights_of(computer, who, role):
            granted.update(right.modes)
        return [m for m in MODES if m in granted]

    def share_modes(self, computer: ComputerConfig, who: str, role: str | None) -> list[ShareMode]:
        """The modes `who` may push `computer` in to another seat or the wall."""
        granted: set[str] = set()
        for right in self._rights_of(computer, who, role):
            granted.update(right.share)
        return [m for m in SHARE_MODES if m in granted]

    def _rights_of(self, computer: ComputerConfig, who: str, role: str | None) -> list[Any]:
        role = role or SOURCE_ROLE
        if role == "admin":  # admin has every right, as everywhere else
            return [_EVERYTHING]
        return [
            r
            for r in computer.rights()
            if (r.role is not None and self.roles.grants(role, r.role)) or r.operator == who
        ]

    def check(
        self, device_id: str, action: str, args: Mapping[str, Any], who: str, role: str | None
    ) -> str | None:
        """Why the caller may not do this on the matrix `device_id`, or None."""
        if action == "route":
            computer = self.computer_at(device_id, args.get("input"))
            if computer is None:
                return None
            mode = args.get("mode") or "full"
            allowed = self.modes(computer, who, role)
            return None if mode in allowed else refusal(computer, who, role, mode, allowed)
        if action == "recall_preset":
            # What a preset routes is the matrix's secret: it may put any computer
            # anywhere, so only someone who reaches every secure one fully may recall it.
            for computer in self.by_id.values():
                if computer.matrix == device_id and computer.secure:
                    if "full" not in self.modes(computer, who, role):
                        return (
                            f"{who} may not recall a preset on {device_id}: it may route the "
                            f"secure computer {label(computer)}"
                        )
        return None


class _Everything:
    modes = list(MODES)
    share = list(SHARE_MODES)


_EVERYTHING = _Everything()


def label(computer: ComputerConfig) -> str:
    return f"{computer.name} ({computer.id})" if computer.name else computer.id


def refusal(
    computer: ComputerConfig, who: str, role: str | None, mode: str, allowed: Sequence[str]
) -> str:
    whom = f"{who} ({role or SOURCE_ROLE})"
    if not allowed:
        return f"{whom} may not reach the computer {label(computer)}"
    return (
        f"{whom} may not reach the computer {label(computer)} in {mode} mode; "
        f"only in: {', '.join(allowed)}"
    )
