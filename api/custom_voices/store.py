"""Custom voices and voice consents on disk: one folder per record, holding its audio (wav) and metadata (JSON).

Records survive restarts. A record is written into a hidden temporary folder and renamed into place, so a crash
never leaves a half-written record that later reads as real. Ids are random (`voice_…`, `cons_…`) and checked
against a strict pattern before they touch a path, so an id taken from a URL cannot point outside the store.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engines.base import AudioBuffer

STORE_RATE = 24_000  # Chatterbox's decoder rate; its 16 kHz encoder input is resampled from this
AUDIO_FILE = "audio.wav"
META_FILE = "meta.json"
_ID_HEX = 24


class StoreFullError(Exception):
    """The store already holds its configured maximum of records."""


@dataclass(frozen=True)
class StoredRecord:
    id: str
    created_at: int
    meta: dict[str, Any]
    audio_path: Path


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    pcm = (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


class RecordStore:
    """Records of one kind (`prefix` is `voice` or `cons`) under `root`. Safe to share between threads."""

    def __init__(self, root: Path, prefix: str, max_records: int):
        self.root = root
        self.prefix = prefix
        self.max_records = max_records
        self._id_pattern = re.compile(rf"^{re.escape(prefix)}_[0-9a-f]{{{_ID_HEX}}}$")
        self._lock = threading.Lock()  # create/update/delete are read-modify-write on the folder

    def valid_id(self, record_id: str) -> bool:
        return bool(self._id_pattern.match(record_id))

    def create(self, meta: dict[str, Any], audio: AudioBuffer) -> StoredRecord:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)
            if sum(1 for _ in self._folders()) >= self.max_records:
                raise StoreFullError(f"the store already holds {self.max_records} records")
            record_id = f"{self.prefix}_{secrets.token_hex(_ID_HEX // 2)}"
            created_at = int(time.time())
            tmp = self.root / f".tmp-{record_id}"
            tmp.mkdir()
            try:
                write_wav(tmp / AUDIO_FILE, audio.samples, audio.sample_rate)
                body = {"id": record_id, "created_at": created_at, **meta}
                (tmp / META_FILE).write_text(json.dumps(body), encoding="utf-8")
                tmp.rename(self.root / record_id)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return StoredRecord(record_id, created_at, dict(meta), self.root / record_id / AUDIO_FILE)

    def get(self, record_id: str) -> StoredRecord | None:
        if not self.valid_id(record_id):
            return None
        return self._read(self.root / record_id)

    def list(self) -> list[StoredRecord]:
        """Newest first (ties broken by id, so pages are stable)."""
        records = [r for r in (self._read(f) for f in self._folders()) if r is not None]
        return sorted(records, key=lambda r: (-r.created_at, r.id))

    def update(self, record_id: str, **changes: Any) -> StoredRecord | None:
        with self._lock:
            record = self.get(record_id)
            if record is None:
                return None
            meta = {**record.meta, **changes}
            body = {"id": record.id, "created_at": record.created_at, **meta}
            tmp = record.audio_path.parent / f".{META_FILE}.tmp"
            tmp.write_text(json.dumps(body), encoding="utf-8")
            tmp.replace(record.audio_path.parent / META_FILE)  # atomic: readers see the old or the new file
            return StoredRecord(record.id, record.created_at, meta, record.audio_path)

    def delete(self, record_id: str) -> bool:
        with self._lock:
            if not self.valid_id(record_id) or not (self.root / record_id).is_dir():
                return False
            # Renamed away first, so the record disappears at once even if removing the files is slow.
            doomed = self.root / f".del-{record_id}-{secrets.token_hex(4)}"
            (self.root / record_id).rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def _folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.iterdir() if p.is_dir() and self.valid_id(p.name)]

    @staticmethod
    def _read(folder: Path) -> StoredRecord | None:
        try:
            body = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (folder / AUDIO_FILE).is_file():
            return None
        meta = {k: v for k, v in body.items() if k not in ("id", "created_at")}
        return StoredRecord(str(body["id"]), int(body["created_at"]), meta, folder / AUDIO_FILE)
