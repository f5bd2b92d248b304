"""Tool calls on the embedded model: every `tool_choice` (auto, required, none, a named function), streamed or not.

llama-cpp-python's `chatml-function-calling` format cannot serve an agent: `auto` refuses to stream, `required`
fails an assertion, tool results (`role: "tool"`) are dropped from the prompt, the model's earlier calls are
rendered HTML-escaped (`&#34;`), and an `auto` reply chosen to be a message is then held to a grammar that only
admits a function name or the end (an empty reply, or `functions.get_weather:` read aloud).

Here the ChatML prompt is ours: the tools in the system message, earlier calls and their results as the model saw
them. The choice between a message and a function is made under a grammar at temperature 0 (as llama.cpp does); a
message is then free text, streamed token by token; a call's arguments are generated under the grammar of the
function's JSON schema, so they always parse.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engines.base import EngineError

_END = "<|im_end|>"
_ARGUMENT_TOKENS = 512


@dataclass(frozen=True)
class ToolRequest:
    """What a chat body asks of the tools: the functions on offer and how the reply may use them."""

    tools: tuple[dict[str, Any], ...]
    choice: str | None  # "auto", "required", "none", or the name of the one function to call

    @classmethod
    def of(cls, body: dict[str, Any]) -> ToolRequest | None:
        """None when the body neither offers tools nor holds an earlier call: llama.cpp's own chat path serves it."""
        tools = tuple(t["function"] for t in body.get("tools") or [] if t.get("type", "function") == "function")
        history = any(m.get("role") == "tool" or m.get("tool_calls") for m in body.get("messages") or [])
        if not tools and not history:
            return None
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            choice = (choice.get("function") or {}).get("name")
        elif choice is None:
            choice = "auto" if tools else "none"  # OpenAI's default when tools are given
        return cls(tools, choice if tools else "none")


def _text(content: Any) -> str:
    if isinstance(content, list):  # content parts: the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return "" if content is None else str(content)


def render_prompt(messages: list[dict[str, Any]], request: ToolRequest) -> str:
    """ChatML with the tools described in the system message; results of calls as the user turn that returns them."""
    # The leading system messages (with the tools) head the prompt; a later one (a per-turn note) stays in its
    # place, so the prompt's start does not change from turn to turn and llama.cpp's prefix cache holds.
    lead = next((i for i, m in enumerate(messages) if m.get("role") not in ("system", "developer")), len(messages))
    system = [_text(m.get("content")) for m in messages[:lead]]
    if request.tools and request.choice != "none":
        listed = "\n".join(f"functions.{t['name']}: {t.get('description', '')}\n{json.dumps(t.get('parameters', {}))}"
                           for t in request.tools)
        system.append(
            "You can answer with a message, or call one of these functions:\n" + listed + "\n\nTo answer, begin with "
            "'message:' and write the answer. To call a function, begin with 'functions.<name>:' and give its "
            "arguments as JSON."
        )
    parts = [f"<|im_start|>system\n{chr(10).join(s for s in system if s)}{_END}\n"] if any(system) else []
    names = {}
    for message in messages[lead:]:
        role = message.get("role")
        if role in ("system", "developer"):
            parts.append(f"<|im_start|>system\n{_text(message.get('content'))}{_END}\n")
        elif role == "user":
            parts.append(f"<|im_start|>user\n{_text(message.get('content'))}{_END}\n")
        elif role == "assistant":
            body = []
            if _text(message.get("content")):
                body.append(f"message:\n{_text(message.get('content'))}")
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                names[call.get("id")] = function.get("name", "")
                body.append(_call_text(function, listed=request.choice != "none"))
            parts.append(f"<|im_start|>assistant\n{chr(10).join(body)}{_END}\n")
        elif role == "tool":
            name = names.get(message.get("tool_call_id"), "the function")
            parts.append(f"<|im_start|>user\n{name} returned: {_text(message.get('content'))}{_END}\n")
    return "".join(parts) + "<|im_start|>assistant\n"


def _call_text(function: dict[str, Any], *, listed: bool) -> str:
    """An earlier call as the model made it (with the tools listed), or in words (when it is to answer in words: the
    syntax in its context is what a small model would copy into its answer)."""
    name, arguments = function.get("name", ""), function.get("arguments") or "{}"
    if listed:
        return f"functions.{name}:\n{arguments}"
    try:
        values = json.loads(arguments)
    except ValueError:
        values = {}
    said = ", ".join(f"{k} {v}" for k, v in values.items()) if isinstance(values, dict) else ""
    return f"Let me look that up with {name}" + (f" for {said}." if said else ".")


class ToolChat:
    """Chat completions with tools on one loaded llama.cpp model (`llm`: a `llama_cpp.Llama`)."""

    def __init__(self, llm: Any, model_id: str):
        self._llm = llm
        self._model_id = model_id

    def _grammar(self, gbnf: str) -> Any:
        from llama_cpp import LlamaGrammar

        return LlamaGrammar.from_string(gbnf, verbose=False)

    def _schema_grammar(self, parameters: dict[str, Any]) -> Any:
        from llama_cpp import LlamaGrammar
        from llama_cpp.llama_grammar import JSON_GBNF

        try:
            return LlamaGrammar.from_json_schema(json.dumps(parameters or {"type": "object"}), verbose=False)
        except Exception:  # a schema llama.cpp's converter cannot express: any JSON object still parses
            return LlamaGrammar.from_string(JSON_GBNF, verbose=False)

    def _choose(self, prompt: str, request: ToolRequest) -> dict[str, Any] | None:
        """The function to call, or None for a message."""
        by_name = {t["name"]: t for t in request.tools}
        if request.choice == "none" or not request.tools:
            return None
        if request.choice in by_name:
            return by_name[request.choice]
        options = [f'"functions.{name}:"' for name in by_name]
        if request.choice != "required":
            options.insert(0, '"message:"')
        result = self._llm.create_completion(prompt=prompt, temperature=0, max_tokens=48,
                                             grammar=self._grammar("root ::= " + " | ".join(options)))
        text = result["choices"][0]["text"].strip().removesuffix(":")
        return by_name.get(text.removeprefix("functions.")) if text.startswith("functions.") else None

    def events(self, body: dict[str, Any], request: ToolRequest) -> Iterator[tuple[str, Any]]:
        """("content", text piece)…, or ("call", (name, arguments)); then ("finish", reason); then ("usage", dict)."""
        messages = body.get("messages") or []
        if request.choice == "auto" and messages and messages[-1].get("role") == "tool":
            # Right after a function's result, `auto` answers in words: a 135M model asked again calls the same
            # function again (an agent loops), and with the tools listed it copies their syntax into its answer.
            request = ToolRequest(request.tools, "none")
        prompt = render_prompt(messages, request)
        prompt_tokens = len(self._llm.tokenize(prompt.encode(), add_bos=False, special=True))
        tool = self._choose(prompt, request)
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 512
        if tool is not None:
            result = self._llm.create_completion(
                prompt=f"{prompt}functions.{tool['name']}:\n", temperature=0, max_tokens=_ARGUMENT_TOKENS,
                stop=[_END], grammar=self._schema_grammar(tool.get("parameters") or {}),
            )
            arguments = result["choices"][0]["text"].strip()
            try:
                json.loads(arguments)
            except ValueError:
                raise EngineError(f"The embedded model's arguments for {tool['name']} are not JSON.") from None
            yield "call", (tool["name"], arguments)
            yield "finish", "tool_calls"
            completion = result["usage"]["completion_tokens"]
        else:
            completion, reason, said = 0, "stop", ""
            sampling = {k: body[k] for k in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
                        if body.get(k) is not None}
            stop = [_END] + ([body["stop"]] if isinstance(body.get("stop"), str) else list(body.get("stop") or []))
            start = "message:\n" if request.tools and request.choice != "none" else ""
            for chunk in self._llm.create_completion(prompt=prompt + start, max_tokens=max_tokens, stop=stop,
                                                     stream=True, **sampling):
                choice = chunk["choices"][0]
                if choice["text"]:
                    completion += 1
                    said += choice["text"]
                    yield "content", choice["text"]
                reason = choice.get("finish_reason") or reason
            if not said.strip():
                raise EngineError("The embedded model gave an empty reply.")
            yield "finish", reason
        yield "usage", {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                        "total_tokens": prompt_tokens + completion}

    def complete(self, body: dict[str, Any], request: ToolRequest) -> dict[str, Any]:
        content, calls, reason, usage = "", [], "stop", {}
        for kind, value in self.events(body, request):
            if kind == "content":
                content += value
            elif kind == "call":
                calls.append({"id": _call_id(), "type": "function",
                              "function": {"name": value[0], "arguments": value[1]}})
            elif kind == "finish":
                reason = value
            else:
                usage = value
        message: dict[str, Any] = {"role": "assistant", "content": content.strip() or None}
        if calls:
            message["tool_calls"] = calls
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": self._model_id, "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": usage}

    def stream(self, body: dict[str, Any], request: ToolRequest) -> Iterator[dict[str, Any]]:
        head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": self._model_id}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        for kind, value in self.events(body, request):
            if kind == "content":
                yield chunk({"content": value})
            elif kind == "call":
                name, arguments = value
                yield chunk({"tool_calls": [{"index": 0, "id": _call_id(), "type": "function",
                                             "function": {"name": name, "arguments": ""}}]})
                yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})
            elif kind == "finish":
                yield chunk({}, value)
            elif (body.get("stream_options") or {}).get("include_usage"):
                yield {**head, "choices": [], "usage": value}


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
