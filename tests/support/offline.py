"""Proof that a model loaded and ran without the network: every socket connect to a non-loopback address."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@contextmanager
def network_connects() -> Iterator[list[tuple]]:
    """Record the non-loopback socket connects made inside the block. Audit hooks cannot be removed, so the hook
    goes inert when the block ends."""
    calls: list[tuple] = []
    active = [True]

    def hook(event: str, args: tuple) -> None:
        if active[0] and event == "socket.connect":
            address = args[1]
            host = address[0] if isinstance(address, tuple) else str(address)
            if host not in _LOOPBACK and not str(host).startswith("/"):  # a path: a Unix socket
                calls.append(args)

    sys.addaudithook(hook)
    try:
        yield calls
    finally:
        active[0] = False


@pytest.fixture(scope="module")
def network_calls() -> Iterator[list[tuple]]:
    """The module's non-loopback connects: a test module imports this fixture, builds its model under it, and
    asserts the list is empty."""
    with network_connects() as calls:
        yield calls
