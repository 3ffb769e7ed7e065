"""The closed loop of a ticket, as a pure state machine: no store, no clock.

collect -> register -> dispatch -> handle (accept) -> report back -> verify and close
-> evaluate, with the side roads the national workflow has: verification that fails
sends the ticket back to its handler (rework, counted against the handler); a closed
ticket may be reopened; a report may be a duplicate (merged into another ticket), not
this district's responsibility, or found not to be real at all.

`next_state(state, transition)` is the one place that says what is legal; anything it
refuses is answered 409 by the API with the reason it gives.
"""

from __future__ import annotations

from typing import Final

from daemon.errors import Refused

# States, in the order of the loop, then the ends off the loop.
COLLECTED: Final = "collected"  # reported, not yet registered (采集)
REGISTERED: Final = "registered"  # accepted as a case, category and tier set (立案)
DISPATCHED: Final = "dispatched"  # sent to its handler(s) (派遣)
HANDLING: Final = "handling"  # the handler took it (处置); its response time ends here
REPORTED: Final = "reported"  # the handler reported back (反馈)
CLOSED: Final = "closed"  # verified and closed (核查结案)
EVALUATED: Final = "evaluated"  # the reporter's satisfaction is in (评价)
DUPLICATE: Final = "duplicate"  # merged into another ticket
NOT_OURS: Final = "not_ours"  # not this district's responsibility (退回/不属于本级)
INVALID: Final = "invalid"  # the report was not real

STATES: Final = (
    COLLECTED,
    REGISTERED,
    DISPATCHED,
    HANDLING,
    REPORTED,
    CLOSED,
    EVALUATED,
    DUPLICATE,
    NOT_OURS,
    INVALID,
)
# A ticket in one of these states is no longer owed any work: no deadline runs.
DONE: Final = frozenset({CLOSED, EVALUATED, DUPLICATE, NOT_OURS, INVALID})
OPEN: Final = frozenset(STATES) - DONE

_BEFORE_HANDLING = (COLLECTED, REGISTERED, DISPATCHED)

# transition -> ({states it may start from}, the state it leads to)
TRANSITIONS: Final[dict[str, tuple[frozenset[str], str]]] = {
    "register": (frozenset({COLLECTED}), REGISTERED),
    # dispatch again from dispatched/handling: the ticket goes to another handler.
    "dispatch": (frozenset({REGISTERED, DISPATCHED, HANDLING}), DISPATCHED),
    "accept": (frozenset({DISPATCHED}), HANDLING),
    "report": (frozenset({HANDLING}), REPORTED),
    "verify": (frozenset({REPORTED}), CLOSED),
    "rework": (frozenset({REPORTED}), HANDLING),  # verification failed (返工)
    "evaluate": (frozenset({CLOSED}), EVALUATED),
    "reopen": (frozenset({CLOSED, EVALUATED}), DISPATCHED),
    "merge": (frozenset({*_BEFORE_HANDLING, HANDLING}), DUPLICATE),
    "decline": (frozenset(_BEFORE_HANDLING), NOT_OURS),
    "invalidate": (frozenset(STATES) - {DUPLICATE, NOT_OURS, INVALID}, INVALID),
}


def next_state(state: str, transition: str) -> str:
    """The state `transition` leads to from `state`; Refused (409) with the reason when
    the loop does not allow it, KeyError for a transition that does not exist."""
    allowed_from, to = TRANSITIONS[transition]
    if state not in allowed_from:
        legal = sorted(t for t, (starts, _) in TRANSITIONS.items() if state in starts)
        raise Refused(
            f"cannot {transition} a ticket that is {state}; from {state}: "
            + (", ".join(legal) if legal else "nothing (the ticket is done)")
        )
    return to


def legal_transitions(state: str) -> list[str]:
    return sorted(t for t, (starts, _) in TRANSITIONS.items() if state in starts)
