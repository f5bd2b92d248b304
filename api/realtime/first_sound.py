"""The first sound of a reply goes first: its LLM waits while the reply's first phrase is being synthesised.

On a CPU box the LLM and the speech engine share the same few cores. Once the first phrase is cut from the token
stream, the tokens after it are not heard for a second or more, yet generating them while the first phrase is
synthesised slows the synthesis that is heard first (measured on 2 cores: Kokoro's first phrase took ~1.5 s beside
the LLM against ~0.7 s alone). So the reader of the LLM stream pauses from the moment the first phrase goes to the
speech engine until its first audio chunk is out (or the phrase ended without one). The engine's own stream buffer
(`EngineLease.iterate`) lets a few more tokens through, then llama.cpp stops until the reader resumes. A remote LLM
is only read later, not slowed; text-only replies never close the gate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import TypeVar

T = TypeVar("T")


class FirstSound:
    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        self._used = False  # only the first phrase closes the gate

    async def sounding(self, audio: AsyncIterator[T]) -> AsyncIterator[T]:
        """A phrase's audio from the speech engine. For the reply's first phrase the LLM's reader waits from here until
        its first chunk is out, or until the phrase ends without one (skipped or failed); later phrases pass through."""
        if not self._used:
            self._used = True
            self._open.clear()
        try:
            async for chunk in audio:
                self._open.set()
                yield chunk
        finally:
            self._open.set()

    async def paced(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """`stream`'s items, reading the next one only while no first phrase is being synthesised."""
        async with aclosing(stream):  # type: ignore[type-var]  # stopped early: the LLM stops at once too
            async for item in stream:
                yield item
                if not self._open.is_set():
                    await self._open.wait()
