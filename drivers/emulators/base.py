"""The shape of an emulator: started and stopped by the daemon or by a test."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class EmulatorOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Emulator:
    Options: ClassVar[type[BaseModel]] = EmulatorOptions
    type: ClassVar[str]  # after Options: inside the class body `type` is this str

    def __init__(self, host: str, port: int, options: Any) -> None:
        self.host = host
        self.port = port
        self.options = options

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError
