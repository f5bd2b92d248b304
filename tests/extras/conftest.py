"""The tiny NeMo models shared by tests/extras/test_nemo*.py. Every extras venv (and the main one) collects this
directory, so NeMo is imported only when a test asks for the fixture."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def nemo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny random-weight `.nemo` files (tests/support/tiny_nemo.py): `tdt`, Parakeet-TDT-shaped, and `stream`,
    cache-aware. One seed, then both built in turn (the streaming model's weights continue the generator)."""
    from tests.support import tiny_nemo

    directory = tmp_path_factory.mktemp("nemo")
    tdt, _ = tiny_nemo.checkpoint(directory, "tiny", streaming=False, seed=0)
    stream, _ = tiny_nemo.checkpoint(directory, "tiny", streaming=True, seed=None)
    return {"tdt": tdt, "stream": stream}
