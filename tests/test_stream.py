"""The byte-stream link against a line-echo emulator, over TCP and over a real pty."""

from __future__ import annotations

import asyncio

import pytest

from daemon.errors import LinkDown, NoAnswer
from drivers.emulators.stream import Fault, Session, StreamEmulator
from drivers.stream import Replies, StreamLink
from tests.support import free_port


class Echo(StreamEmulator):
    """Answers each CR-terminated line with `OK <line>`."""

    type = "echo-test"

    def greeting(self, session: Session) -> bytes:
        return b"HELLO\r"

    def feed(self, session: Session, data: bytes) -> bytes:
        session.buffer += data
        out = b""
        while b"\r" in session.buffer:
            line, session.buffer = session.buffer.split(b"\r", 1)
            out += b"OK " + line + b"\r"
        return out


class LineClient:
    """A minimal sans-I/O line protocol on the link, as a driver would have."""

    def __init__(self, link: StreamLink) -> None:
        self.link = link
        self.buffer = b""
        self.replies: Replies[bytes] = Replies()
        self.unsolicited: list[bytes] = []
        link.listen(self.on_data, self.reset, lambda why: self.replies.fail(LinkDown(why)))

    def reset(self) -> None:
        self.buffer = b""

    def on_data(self, data: bytes) -> None:
        self.buffer += data
        while b"\r" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r", 1)
            if not self.replies.resolve(line):
                self.unsolicited.append(line)

    async def ask(self, line: bytes, timeout: float = 0.3) -> bytes:
        waiter = self.replies.expect()
        await self.link.write(line + b"\r")
        return await self.replies.wait(waiter, timeout, self.link)


@pytest.mark.parametrize("transport", ["tcp", "pty"])
async def test_request_reply_unsolicited_and_faults(transport: str) -> None:
    emu = Echo("127.0.0.1", free_port())
    if transport == "tcp":
        await emu.start()
        url = f"tcp://127.0.0.1:{emu.port}"
    else:
        url = await emu.start_pty()
    link = StreamLink.from_url(url)
    client = LineClient(link)
    await link.open()
    try:
        if transport == "tcp":
            await asyncio.sleep(0.05)
            assert client.unsolicited == [b"HELLO"]
        assert await client.ask(b"PING") == b"OK PING"
        emu.push(b"PANEL 3\r")
        await asyncio.sleep(0.05)
        assert client.unsolicited[-1] == b"PANEL 3"
        emu.fault = Fault.SILENT
        with pytest.raises(NoAnswer):
            await client.ask(b"PING")
        emu.fault = Fault.NONE
        assert await client.ask(b"AGAIN") == b"OK AGAIN"
        if transport == "tcp":
            emu.fault = Fault.DISCONNECT
            with pytest.raises(LinkDown):
                await client.ask(b"BYE", timeout=2)
    finally:
        await link.close()
        await emu.stop()
