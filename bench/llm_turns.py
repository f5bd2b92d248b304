"""What the embedded LLM evaluates per conversation turn, from llama.cpp's own counters (issue 18's tail analysis).

voxloop's engine (`engines/llama_cpp_chat.LlamaCppChat`, SmolLM2-135M, 2 threads) answers a 14-turn spoken-style
conversation, each turn the whole history as the realtime loop sends it (system prompt, every earlier question and
reply, the new question; the window bounded to the last 12 messages as `VOXLOOP_REALTIME__MAX_HISTORY_MESSAGES`
does). After each turn, llama.cpp's `llama_perf_context` gives the prompt tokens it actually evaluated
(`n_p_eval`) and how long that took: against the prompt's length, it shows whether a turn reuses the cached
conversation and evaluates only its new tokens, including after the window starts dropping old messages (the KV
shift in llama_cpp_chat.py). Then a long reply is cancelled after 5 tokens: the tokens llama.cpp decoded after the
cancel (`n_eval`) and how soon the engine takes the next call show that a cancelled reply's work stops at once.
Beside it, the same conversation on a bare `llama_cpp.Llama` with `reset` between turns (no reuse): the cost the
cache saves. Run: `.venv/bin/python bench/llm_turns.py`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp  # noqa: E402

from engines.base import CancelledByClient, CancelToken  # noqa: E402
from engines.llama_cpp_chat import LlamaCppChat, smollm2_gguf  # noqa: E402

SYSTEM = "You are a friendly voice assistant. Answer in one to three short spoken sentences."
QUESTIONS = [
    "What is the capital of France?", "And how many people live there?", "Tell me a fun fact about cats.",
    "Why is the sky blue?", "What should I cook tonight?", "How far away is the moon?",
    "Can you recommend a good book?", "What is two plus two?", "How do bees make honey?",
    "What's a good name for a dog?", "Is coffee good for you?", "Which planet is the largest?",
    "Why do cats purr?", "Thanks, that is all for today.",
]
WINDOW = 12  # messages of history kept (VOXLOOP_REALTIME__MAX_HISTORY_MESSAGES's default)


def perf(llm: llama_cpp.Llama) -> tuple[int, int, float, float]:
    data = llama_cpp.llama_perf_context(llm._ctx.ctx)
    return data.n_p_eval, data.n_eval, data.t_p_eval_ms, data.t_eval_ms


def conversation(chat: LlamaCppChat) -> None:
    history: list[dict] = []
    print(f"{'turn':>4s} {'prompt tok':>10s} {'evaluated':>9s} {'eval ms':>8s} {'reply tok':>9s}  (llama.cpp counters)")
    for turn, question in enumerate(QUESTIONS, 1):
        history.append({"role": "user", "content": question})
        messages = [{"role": "system", "content": SYSTEM}] + history[-WINDOW:]
        body = {"messages": messages, "max_tokens": 60, "temperature": 0}
        prompt = len(chat._llm.tokenize(_chatml(messages).encode(), add_bos=False, special=True))
        before = perf(chat._llm)
        reply = "".join(c["choices"][0]["delta"].get("content") or "" for c in chat.stream(body, CancelToken())
                        if c.get("choices"))
        after = perf(chat._llm)
        history.append({"role": "assistant", "content": reply})
        print(f"{turn:4d} {prompt:10d} {after[0] - before[0]:9d} {after[2] - before[2]:8.1f} {after[1] - before[1]:9d}")


def _chatml(messages: list[dict]) -> str:
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


def cancel_stops_at_once(chat: LlamaCppChat) -> None:
    body = {"messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": "Tell me a very long story about a dragon and a knight."}],
            "max_tokens": 400, "temperature": 0}
    cancel = CancelToken()
    seen = 0
    before = perf(chat._llm)
    stream = chat.stream(body, cancel)
    try:
        for chunk in stream:
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                seen += 1
            if seen == 5:
                at_cancel = perf(chat._llm)
                cancelled_at = time.perf_counter()
                cancel.cancel()
    except CancelledByClient:
        pass
    stopped = time.perf_counter() - cancelled_at
    after = perf(chat._llm)
    started = time.perf_counter()
    next_body = {"messages": [{"role": "user", "content": "Hi."}], "max_tokens": 1, "temperature": 0}
    list(chat.stream(next_body, CancelToken()))
    print(f"cancel after 5 tokens: llama.cpp decoded {after[1] - at_cancel[1]} token(s) after the cancel "
          f"({at_cancel[1] - before[1]} before), the stream ended {stopped * 1000:.1f} ms after it, "
          f"and the next call took {(time.perf_counter() - started) * 1000:.0f} ms")


def without_reuse(llm: llama_cpp.Llama) -> None:
    history: list[dict] = []
    evaluated, millis = [], []
    for question in QUESTIONS:
        history.append({"role": "user", "content": question})
        messages = [{"role": "system", "content": SYSTEM}] + history[-WINDOW:]
        llm.reset()
        before = perf(llm)
        out = llm.create_chat_completion(messages=messages, max_tokens=60, temperature=0)
        after = perf(llm)
        evaluated.append(after[0] - before[0])
        millis.append(after[2] - before[2])
        history.append({"role": "assistant", "content": out["choices"][0]["message"]["content"]})
    print("bare llama_cpp.Llama, reset each turn (no reuse): evaluated", evaluated)
    print("  prompt eval ms", [round(m) for m in millis])


def main() -> None:
    print("load:", [round(v, 2) for v in os.getloadavg()])
    chat = LlamaCppChat(smollm2_gguf(), context=2048, threads=2, model_id="smollm2", chat_format="chatml")
    conversation(chat)
    cancel_stops_at_once(chat)
    chat.close()
    without_reuse(llama_cpp.Llama(model_path=str(smollm2_gguf()), n_ctx=2048, n_threads=2, verbose=False,
                                  chat_format="chatml"))
    print("load:", [round(v, 2) for v in os.getloadavg()])


if __name__ == "__main__":
    main()
