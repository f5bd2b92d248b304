"""Settings that must agree with each other are refused at startup when they do not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.settings import APPEND_ENVELOPE_BYTES, RealtimeSettings

MiB = 1024 * 1024


def test_the_websocket_message_limit_leaves_room_for_an_oversized_append() -> None:
    """An append over `max_append_chars` must still be a readable message, so it can get an `error` event."""
    defaults = RealtimeSettings()
    assert defaults.max_append_chars == 15 * MiB and defaults.max_message_bytes == 32 * MiB
    RealtimeSettings(max_append_chars=20 * MiB, max_message_bytes=20 * MiB + APPEND_ENVELOPE_BYTES)
    with pytest.raises(ValidationError, match="max_message_bytes"):
        RealtimeSettings(max_append_chars=20 * MiB, max_message_bytes=20 * MiB)
    with pytest.raises(ValidationError, match="max_message_bytes"):
        RealtimeSettings(max_message_bytes=15 * MiB + 1000)  # room for the audio, not the JSON
