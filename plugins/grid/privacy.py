"""Personal fields: masked on the way out unless the caller's role needs them.

Only a role that includes `grid-registrar` may ask for `reveal=true`, and every such
read is written to the audit trail (who, which rows) before the answer leaves, so
"who looked at this person's ID number" always has an answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from daemon import audit
from daemon.auth import Principal
from daemon.host import Host
from plugins.grid.config import PRIVACY_ROLE
from plugins.grid.formats import mask_id_number, mask_phone

PERSONAL = {"id_number": mask_id_number, "phone": mask_phone}


def may_reveal(host: Host, who: Principal, reveal: bool) -> bool:
    """403 for a reveal the role may not make: asking and silently getting masks
    would look like a data problem, not a rights problem."""
    if reveal and not host.roles.grants(who.role, PRIVACY_ROLE):
        raise HTTPException(
            403, f"role {who.role!r} may not see personal fields; it needs {PRIVACY_ROLE!r}"
        )
    return reveal


def mask(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for row in rows:
        for key, masker in PERSONAL.items():
            if row.get(key):
                row[key] = masker(row[key])
    return rows


async def reveal(
    host: Host, who: Principal, what: str, rows: list[dict[str, Any]], key: str
) -> list[dict[str, Any]]:
    """Audit an unmasked read of `rows` (by their `key`), then hand them back whole."""
    if rows:
        await audit.record(
            host.store,
            who=who.name,
            what="grid.reveal",
            target=f"grid:{what}",
            args={"ids": [row[key] for row in rows], "fields": sorted(PERSONAL)},
            cause="api",
            result="ok",
        )
    return rows
