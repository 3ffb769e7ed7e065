"""Request bodies over the limit (`[api] max_body_kb`) answer 413, before they are read.

A body that says its length (`Content-Length`) is refused before a byte of it is read;
one that does not (chunked, or an ASGI client's stream) is counted as it arrives and
refused as soon as it passes the limit, so a slow or endless body never fills memory.
Both answer in the API's error shape, `{"error": {"code": "too_large", ...}}`.

Starlette's RequestBodyLimitMiddleware (and FastAPI's `max_body_size` on top of it)
does the counting too, but answers in plain text or in FastAPI's `{"detail": ...}`
from outside the app's exception handlers, not in the contract's shape.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daemon.api.errors import error


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"the request body is larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not declared.isdigit():
            await error(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
            return
        if declared is not None and int(declared) > self.max_bytes:
            await error(413, "too_large", self.message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised where the app reads its body: its exception handlers answer
                    # it as any HTTPException, in the contract's shape.
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, counted, send)
