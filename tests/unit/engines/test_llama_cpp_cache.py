"""The embedded LLM reads only a turn's new tokens: llama.cpp's own prompt-eval count, on the real SmolLM2 model."""

from __future__ import annotations

import pytest

from engines.base import CancelToken
from engines.llama_cpp_chat import LlamaCppChat, chatml_prompt, smollm2_gguf

llama_cpp = pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def chat() -> LlamaCppChat:
    engine = LlamaCppChat(smollm2_gguf(), context=2048, threads=2, model_id="m", chat_format="chatml-function-calling")
    yield engine
    engine.close()


def _ask(chat: LlamaCppChat, messages: list[dict]) -> tuple[str, int]:
    """(the reply, the prompt tokens llama.cpp evaluated for it)."""
    llama_cpp.llama_perf_context_reset(chat._llm.ctx)
    reply = chat.complete({"messages": messages, "max_tokens": 12, "temperature": 0.0}, CancelToken())
    return reply["choices"][0]["message"]["content"], llama_cpp.llama_perf_context(chat._llm.ctx).n_p_eval


def _tokens(chat: LlamaCppChat, messages: list[dict]) -> int:
    return len(chat._llm.tokenize(chatml_prompt(messages).encode(), add_bos=False, special=True))


def test_chatml_prompt_is_unescaped_and_keeps_notes_in_place() -> None:
    prompt = chatml_prompt([{"role": "system", "content": "Be kind."}, {"role": "assistant", "content": "It's <fine>"},
                            {"role": "user", "content": "Why?"}, {"role": "system", "content": "Sounds sad."}])
    assert "It's <fine>" in prompt and "&#39;" not in prompt
    assert prompt.index("Why?") < prompt.index("Sounds sad.") and prompt.endswith("<|im_start|>assistant\n")


def test_next_turn_and_dropped_history_evaluate_only_new_tokens(chat: LlamaCppChat) -> None:
    history = [{"role": "system", "content": "You are a friendly voice assistant. Answer briefly."}]
    evaluated = []
    for question in ["What's the capital of France?", "And of Italy?", "Name a big river.", "What's two plus two?"]:
        history.append({"role": "user", "content": question})
        reply, count = _ask(chat, history)
        evaluated.append((count, _tokens(chat, history)))
        history.append({"role": "assistant", "content": reply})
    # After the first turn only the new question (and the previous reply's end marker) is read, not the history.
    for count, total in evaluated[1:]:
        assert count < 30 < total, evaluated
    # The window drops the two oldest messages: the kept conversation is shifted in the cache, not read again.
    kept = [history[0], *history[3:], {"role": "user", "content": "Thanks, bye."}]
    reply, count = _ask(chat, kept)
    assert reply.strip() and count < 30 < _tokens(chat, kept), count
