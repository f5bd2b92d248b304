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


def test_a_long_conversation_in_a_sliding_window_reads_only_new_tokens(chat: LlamaCppChat) -> None:
    """14 turns, the window keeping the last 12 messages, the model's own (greedy, repetitive) replies. Where the kept
    history goes on in the cache is found by the first tokens after the shared prefix; SmolLM2's replies start alike
    and repeat phrases, so those tokens also occur earlier, in the dropped reply: taking the first occurrence shifted
    almost nothing and turn 10 read its whole prompt again (411 of 492 tokens, ~2 s on two cores)."""
    questions = ["What is the capital of France?", "And how many people live there?", "Tell me a fun fact about cats.",
                 "Why is the sky blue?", "What should I cook tonight?", "How far away is the moon?",
                 "Can you recommend a good book?", "What is two plus two?", "How do bees make honey?",
                 "What's a good name for a dog?", "Is coffee good for you?", "Which planet is the largest?",
                 "Why do cats purr?", "Thanks, that is all for today."]
    system = {"role": "system", "content": "You are a friendly voice assistant. Answer in one to three short spoken "
                                           "sentences."}
    history: list[dict] = []
    evaluated = []
    for question in questions:
        history.append({"role": "user", "content": question})
        messages = [system, *history[-12:]]
        llama_cpp.llama_perf_context_reset(chat._llm.ctx)
        reply = chat.complete({"messages": messages, "max_tokens": 60, "temperature": 0.0}, CancelToken())
        evaluated.append((llama_cpp.llama_perf_context(chat._llm.ctx).n_p_eval, _tokens(chat, messages)))
        history.append({"role": "assistant", "content": reply["choices"][0]["message"]["content"]})
    assert all(count < 40 for count, _ in evaluated[1:]), evaluated
    assert max(total for _, total in evaluated) > 400  # the window did drop history
