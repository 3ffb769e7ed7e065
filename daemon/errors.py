"""Typed errors that cross module boundaries.

Each carries the HTTP status and the stable error code the API answers with, so the
API layer maps them without knowing where they came from.
"""

from __future__ import annotations


class GridhallError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(GridhallError):
    status = 404
    code = "not_found"


class BadArguments(GridhallError):
    status = 422
    code = "bad_arguments"


class Forbidden(GridhallError):
    """The caller's rights do not reach what it asked for (a secure computer, a mode)."""

    status = 403
    code = "forbidden"


class Refused(GridhallError):
    """Refused by an interlock, a running sequence or the workflow."""

    status = 409
    code = "refused"


class DeviceError(GridhallError):
    """A device could not do what was asked; the device itself may still be fine."""

    status = 502
    code = "device_error"


class Unavailable(DeviceError):
    """The device (or its link) is known to be down: answered at once, nothing sent."""

    status = 503
    code = "unavailable"


class NoAnswer(DeviceError):
    """The device did not answer within the exchange timeout."""

    status = 504
    code = "timeout"


class LinkDown(Unavailable):
    """The transport under a bus failed; the bus reconnects with backoff."""

    code = "link_down"


class ProtocolError(DeviceError):
    """The device answered something the protocol does not allow (garbage, bad checksum)."""

    status = 503
    code = "protocol_error"


class DeviceRejected(DeviceError):
    """The device answered with an error of its own (Modbus exception, NAK, E-code)."""

    status = 502
    code = "device_rejected"
