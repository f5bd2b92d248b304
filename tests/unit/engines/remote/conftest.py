"""Remote engines without a network: httpx's MockTransport answers, and retries do not wait."""

from __future__ import annotations

import pytest

from engines.remote import client


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "RETRY_BACKOFF_SECONDS", 0.0)
