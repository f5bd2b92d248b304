"""The embedded LLM under requests that used to hurt it: bad fields, an over-long prompt, a client that leaves.

Each of these once ended in a 500 or kept the model busy for nobody; each must now leave the server answering the
next request at once, on the same connection.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from engines.base import CancelledByClient, CancelToken
from engines.llama_cpp_chat import EMBEDDED_CHAT_MODEL, LlamaCppChat, smollm2_gguf

pytestmark = pytest.mark.models

# SmolLM2-135M counts for ~420 tokens at temperature 0 before it stops: a long generation, several seconds even on
# a fast CPU, that a cancel must cut short.
LONG = [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]
SHORT = [{"role": "user", "content": "Say hi."}]


def _chat(messages: list[dict], **fields: object) -> dict[str, object]:
    return {"model": EMBEDDED_CHAT_MODEL, "messages": messages, "temperature": 0, **fields}


def test_engine_stops_a_non_streaming_completion_between_tokens() -> None:
    engine = LlamaCppChat(smollm2_gguf(), context=2048, threads=2, model_id="m", chat_format="chatml-function-calling")
    try:
        engine.complete(_chat(LONG, max_tokens=1))  # the prompt evaluated once: the cancel below lands mid-answer
        cancel, outcome = CancelToken(), {}

        def run() -> None:
            try:
                outcome["result"] = engine.complete(_chat(LONG, max_tokens=1000), cancel)
            except CancelledByClient as exc:
                outcome["cancelled"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(0.5)
        cancelled_at = time.monotonic()
        cancel.cancel()
        worker.join(timeout=30)
        assert "cancelled" in outcome, f"the completion ran to its end: {outcome.get('result')}"
        assert time.monotonic() - cancelled_at < 5
        # The model is usable afterwards, without the old token.
        assert engine.complete(_chat(SHORT, max_tokens=3))["choices"]
    finally:
        engine.close()


async def test_bad_fields_are_400s_and_the_connection_goes_on(http: httpx.AsyncClient) -> None:
    for fields, param in (({"temperature": "hot"}, "temperature"), ({"max_tokens": "many"}, "max_tokens"),
                          ({"top_p": "x"}, "top_p"), ({"stop": {"a": 1}}, "stop"), ({"max_tokens": -1}, "max_tokens")):
        response = await http.post("/v1/chat/completions", json=_chat(SHORT, **fields))
        assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text
        after = await http.post("/v1/chat/completions", json=_chat(SHORT, max_tokens=3))  # same keep-alive connection
        assert after.status_code == 200, after.text


async def test_prompt_longer_than_the_context_is_a_400(http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/chat/completions", json=_chat([{"role": "user", "content": "hi " * 6000}]))
    error = response.json()["error"]
    assert response.status_code == 400 and error["param"] == "messages" and "context" in error["message"]


async def test_a_client_that_leaves_stops_its_completion(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, timeout=120) as warm:
        started = time.monotonic()
        assert (await warm.post("/v1/chat/completions", json=_chat(SHORT, max_tokens=5))).status_code == 200
        short_seconds = time.monotonic() - started  # what a short answer takes on this machine, model loaded
    async with httpx.AsyncClient(base_url=server_url, timeout=0.5) as leaving:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
            await leaving.post("/v1/chat/completions", json=_chat(LONG, max_tokens=1000))
    async with httpx.AsyncClient(base_url=server_url, timeout=120) as next_client:
        started = time.monotonic()
        response = await next_client.post("/v1/chat/completions", json=_chat(SHORT, max_tokens=5))
        waited = time.monotonic() - started
    assert response.status_code == 200
    # Had the abandoned completion gone on, this one would have waited for its ~400 remaining tokens.
    assert waited < 3 * short_seconds + 1.0, f"{waited:.1f}s for a short answer (alone: {short_seconds:.1f}s)"
