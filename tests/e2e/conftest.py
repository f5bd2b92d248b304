"""End-to-end fixtures shared by several files."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.common import voxloop_server


@pytest.fixture(scope="session")
def voxloop_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second, real voxloop (`voxloop serve` in a subprocess) for the remote engines to point at: its base URL."""
    with voxloop_server({"VOXLOOP_CACHE_DIR": str(tmp_path_factory.mktemp("upstream-cache"))}) as url:
        yield url
