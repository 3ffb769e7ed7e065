"""How much of each thing a request may carry: the shared bounds of request models.

Every string, list and map a request can hold has a bound (tests/test_limits.py walks
the whole OpenAPI for one that has none), so that no single field can take the whole
of a body the size limit lets in (`[api] max_body_kb`), and a bad request is a 422
that names the field. The same models read the config file, which keeps to the same
bounds.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

SHORT = 64  # an id, an action's name, a code, a key
NAME = 200  # a name shown to people
LIST = 100  # parties of a ticket, the values a state may match
ARGS = 16  # the arguments of one action
STEPS = 256  # the steps of a scene or a sequence, or of one parallel group

# SQLite's integers are 64-bit: a larger number met the store as an OverflowError (a
# 500) until every id and amount a request carries was bounded by this.
INT64 = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=INT64)]  # a row's id: a ticket, a whistle, an entry
Int64 = Annotated[int, Field(ge=-INT64, le=INT64)]  # an amount, a balance

Short = Annotated[str, Field(max_length=SHORT)]
Name = Annotated[str, Field(max_length=NAME)]
# An action's arguments where the action is not known yet (a scene's step, a
# schedule): checked against the action's own model when they are saved.
ActionArgs = Annotated[dict[Short, Any], Field(max_length=ARGS)]
