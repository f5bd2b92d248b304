"""The on-disk record store behind custom voices and consents: round trips, order, ids that cannot escape, limits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from api.custom_voices.store import STORE_RATE, RecordStore, StoreFullError
from engines.audio import decode_audio
from engines.base import AudioBuffer


def tone(seconds: float = 1.0, rate: int = 24_000) -> AudioBuffer:
    t = np.arange(int(seconds * rate)) / rate
    return AudioBuffer((0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


def test_round_trip_keeps_meta_and_audio(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "voices", "voice", 10)
    made = store.create({"name": "Ann", "consent": "cons_x"}, tone())
    assert store.valid_id(made.id) and made.id.startswith("voice_")
    got = store.get(made.id)
    assert got is not None and got.meta == {"name": "Ann", "consent": "cons_x"} and got.created_at == made.created_at
    audio = decode_audio(str(got.audio_path), rate=STORE_RATE)
    assert audio.sample_rate == 24_000 and len(audio.samples) == 24_000
    assert np.max(np.abs(audio.samples - tone().samples)) < 1e-4  # 16-bit wav: quantisation only


def test_a_new_store_over_the_same_folder_sees_everything(tmp_path: Path) -> None:
    ids = {RecordStore(tmp_path, "cons", 10).create({"name": str(i)}, tone()).id for i in range(3)}
    assert {r.id for r in RecordStore(tmp_path, "cons", 10).list()} == ids


def test_list_is_newest_first_and_update_renames(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "cons", 10)
    a, b = store.create({"name": "a"}, tone()), store.create({"name": "b"}, tone())
    listed = store.list()
    assert [r.created_at for r in listed] == sorted((a.created_at, b.created_at), reverse=True)
    updated = store.update(a.id, name="a2")
    assert updated is not None and updated.meta["name"] == "a2" and store.get(a.id).meta["name"] == "a2"
    assert store.update("cons_" + "0" * 24, name="x") is None


@pytest.mark.parametrize("bad", ["../voices", "voice_../../etc", "voice_" + "g" * 24, "cons_" + "0" * 24, ""])
def test_ids_outside_the_pattern_are_never_found(tmp_path: Path, bad: str) -> None:
    store = RecordStore(tmp_path, "voice", 10)
    store.create({"name": "x"}, tone())
    assert store.get(bad) is None and store.delete(bad) is False


def test_delete_removes_the_folder(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "voice", 10)
    made = store.create({"name": "x"}, tone())
    assert store.delete(made.id) and store.get(made.id) is None and store.list() == []
    assert list(tmp_path.iterdir()) == []
    assert store.delete(made.id) is False


def test_half_written_records_are_ignored(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "voice", 10)
    made = store.create({"name": "x"}, tone())
    (tmp_path / f".tmp-voice_{'1' * 24}").mkdir()  # a crash mid-create
    broken = tmp_path / f"voice_{'2' * 24}"
    broken.mkdir()
    (broken / "meta.json").write_text("{not json")
    assert [r.id for r in store.list()] == [made.id]


def test_the_store_has_a_ceiling(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, "voice", 2)
    store.create({"name": "a"}, tone())
    store.create({"name": "b"}, tone())
    with pytest.raises(StoreFullError):
        store.create({"name": "c"}, tone())
