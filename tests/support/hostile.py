"""The hostile inputs of issue 15, in one place: the harness (tests/e2e/test_hostile_inputs.py), the unit tests of
text hygiene and phrase cutting, and bench/hostile.py all use these."""

from __future__ import annotations

# Speech `input`s that each took the server down or held it for minutes with one request, before the fix.
SPEECH_PROBES = {
    "url-host-token": "http://" + "a." * 2000,  # segfaulted espeak-ng (~100 dotted letters in one clause)
    "long-decimal": "1." + "5" * 4000,  # out of memory: thousands of words, no punctuation
    "www-run": "www." * 1000,  # minutes of "double-u double-u double-u dot"
    "comma-digits": "$" + ",9" * 2000,  # one 10,000-character token
    "digit-run": "1" * 4096,  # onnxruntime asked for 28-38 GB
    "medium-decimal": "1." + "5" * 350,  # +1.4 GB that onnxruntime's arena never gave back
    "dates": "12/12/2020 " * 370,  # 66-71 s of CPU
    "abbreviations": "Dr. " * 1000,  # > 90 s of CPU: one 1,000-word phrase
    "no-spaces": "x" * 4096,
    "percent-run": "1%" * 2048,  # a quadratic regex before the fix
    "underscores": "_a " * 1365,
}
