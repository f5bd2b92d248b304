"""Schemathesis against the served /openapi.json: every operation, positive and negative cases, on the live server.

Whatever it sends (random form fields, non-audio bytes as `file`, broken JSON, odd paths), the answer must never be
a 5xx, and every error must be OpenAI's envelope. Operations that need real audio or a real model answer 4xx for
fuzzed input; that is the point.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from openapi.snapshot import served_schema

pytestmark = pytest.mark.models

# 8 operations (3 without parameters run once) x this many examples: ~250 requests.
EXAMPLES = 50
# Valid chat requests run the embedded LLM for up to 512 tokens each; cap generation so the fuzz run stays short.
MAX_FUZZ_TOKENS = 8


# The schema the app serves at /openapi.json, built the same way (test_openapi checks they are identical). Loaded at
# collection time because schemathesis' lazy fixture loader does not work with this pytest.
schema = schemathesis.openapi.from_dict(served_schema())


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_5xx_and_openai_errors(case, server_url: str) -> None:
    if case.path == "/v1/chat/completions" and isinstance(case.body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            value = case.body.get(key)  # fuzzed non-integers stay: they must get a 400
            if value is None or (type(value) is int and value > MAX_FUZZ_TOKENS):
                case.body[key] = MAX_FUZZ_TOKENS
    response = case.call(base_url=server_url, timeout=120)
    assert response.status_code < 500, f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["message"], body
