"""uvicorn's server with one step before its shutdown: close realtime sessions the way the protocol expects.

On SIGTERM uvicorn closes every WebSocket with 1012 at once and only then waits for HTTP requests in flight. A
realtime session instead gets to finish the response it is speaking (within the grace), an `error` event saying the
server is shutting down, and close code 1001. The listening sockets close first, so no new connection arrives
meanwhile; the HTTP drain that follows gets what is left of the same grace, so the whole shutdown stays within it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvicorn


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, drain: Callable[[float], Awaitable[None]]):
        super().__init__(config)
        self._drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting before draining (uvicorn closes them again, harmlessly)
        grace = self.config.timeout_graceful_shutdown or 0.0  # `voxloop serve` always sets one
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._drain(grace)
        self.config.timeout_graceful_shutdown = max(0.0, grace - (loop.time() - started))
        await super().shutdown(sockets)
