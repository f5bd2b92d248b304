"""The fields of an OpenAI chat-completion request, checked before anything uses them.

llama.cpp takes whatever it is given and fails deep inside (`temperature: "hot"` is a TypeError mid-generation, a
500), and an upstream's own 400 for the same mistake names its own rules: so both paths check the types and
ranges of OpenAI's fields here, each 400 naming the field in `param`. Fields this module does not know pass
through to the upstream untouched. The embedded model is also held to what it can do (`EmbeddedLimits`): one
choice, and no more tokens than its context holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.http.errors import InvalidRequestError

# OpenAI's limits (openai-openapi CreateChatCompletionRequest).
MAX_STOP_SEQUENCES = 4
MAX_CHOICES = 128
MAX_TOP_LOGPROBS = 20
MAX_LOGIT_BIAS = 100
TOOL_CHOICES = ("none", "auto", "required")


@dataclass(frozen=True)
class EmbeddedLimits:
    """What the embedded model can do beyond the OpenAI ranges."""

    context: int  # tokens of prompt and completion together


def _invalid(param: str, message: str, code: str = "invalid_value") -> InvalidRequestError:
    return InvalidRequestError(message, param=param, code=code)


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequestError:
    got = "null" if value is None else type(value).__name__
    return _invalid(param, f"Invalid type for '{param}': expected {expected}, but got {got} instead.", "invalid_type")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(low: float, high: float) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _wrong_type(param, "a number", value)
        if not (math.isfinite(value) and low <= value <= high):
            raise _invalid(param, f"Invalid '{param}': expected a number from {low:g} to {high:g}, got {value}.")

    return check


def _integer(low: int, high: int | None = None) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not _is_int(value):
            raise _wrong_type(param, "an integer", value)
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise _invalid(param, f"Invalid '{param}': expected an integer {bound}, got {value}.")

    return check


def _of_type(kind: type, name: str) -> Callable[[str, Any], None]:
    def check(param: str, value: Any) -> None:
        if not isinstance(value, kind):
            raise _wrong_type(param, name, value)

    return check


def _stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _wrong_type(param, "a string or an array of strings", value)
    if len(value) > MAX_STOP_SEQUENCES:
        raise _invalid(param, f"Invalid '{param}': at most {MAX_STOP_SEQUENCES} stop sequences, got {len(value)}.")


def _stream_options(param: str, value: Any) -> None:
    _of_type(dict, "an object")(param, value)
    if value.get("include_usage") is not None and not isinstance(value["include_usage"], bool):
        raise _wrong_type(f"{param}.include_usage", "a boolean", value["include_usage"])


def _logit_bias(param: str, value: Any) -> None:
    _of_type(dict, "an object mapping token ids to biases")(param, value)
    for token, bias in value.items():
        if not token.lstrip("-").isdigit():
            raise _invalid(param, f"Invalid '{param}': keys are token ids (integers), got '{token}'.")
        _number(-MAX_LOGIT_BIAS, MAX_LOGIT_BIAS)(f"{param}.{token}", bias)


def _tools(param: str, value: Any) -> None:
    _of_type(list, "an array of tools")(param, value)
    for i, tool in enumerate(value):
        _of_type(dict, "a tool object")(f"{param}[{i}]", tool)
        if tool.get("type", "function") == "function":
            function = tool.get("function")
            _of_type(dict, "a function object")(f"{param}[{i}].function", function)
            _of_type(str, "a string")(f"{param}[{i}].function.name", function.get("name"))
            if function.get("parameters") is not None:
                _of_type(dict, "a JSON schema object")(f"{param}[{i}].function.parameters", function["parameters"])


def _tool_choice(param: str, value: Any) -> None:
    if isinstance(value, str):
        if value not in TOOL_CHOICES:
            raise _invalid(param, f"Invalid '{param}': expected one of {', '.join(TOOL_CHOICES)}, got '{value}'.")
        return
    _of_type(dict, "a string or an object")(param, value)
    if value.get("type", "function") == "function":
        _of_type(dict, "an object")(f"{param}.function", value.get("function"))
        _of_type(str, "a string")(f"{param}.function.name", value["function"].get("name"))


def _response_format(param: str, value: Any) -> None:
    _of_type(dict, "an object")(param, value)
    _of_type(str, "a string")(f"{param}.type", value.get("type"))


# Optional fields in the order of OpenAI's reference; null means "the default" for each of them.
_FIELDS: dict[str, Callable[[str, Any], None]] = {
    "frequency_penalty": _number(-2, 2),
    "logit_bias": _logit_bias,
    "logprobs": _of_type(bool, "a boolean"),
    "top_logprobs": _integer(0, MAX_TOP_LOGPROBS),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "n": _integer(1, MAX_CHOICES),
    "presence_penalty": _number(-2, 2),
    "response_format": _response_format,
    "seed": _integer(-(2**63), 2**63 - 1),
    "stop": _stop,
    "stream": _of_type(bool, "a boolean"),
    "stream_options": _stream_options,
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _of_type(bool, "a boolean"),
    "user": _of_type(str, "a string"),
}


def _messages(value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise _invalid("messages", "'messages' must be a non-empty array of message objects.")
    for i, message in enumerate(value):
        param = f"messages[{i}]"
        if not isinstance(message, dict) or "role" not in message:
            raise _invalid(param, f"'{param}' must be a message object with a 'role'.")
        if not isinstance(message["role"], str):
            raise _wrong_type(f"{param}.role", "a string", message["role"])
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _wrong_type(f"{param}.content", "a string or an array of content parts", content)
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise _wrong_type(f"{param}.content", "an array of content part objects", content)


def _within_embedded(body: dict[str, Any], limits: EmbeddedLimits) -> None:
    # What llama.cpp's chat formats cannot do would fail inside it (assertions, ValueErrors): a 400 instead.
    if body.get("n") not in (None, 1):
        raise _invalid("n", "The embedded model returns one choice: 'n' must be 1.", "unsupported_value")
    if body.get("logprobs"):
        raise _invalid("logprobs", "The embedded model does not return logprobs.", "unsupported_value")
    choice = body.get("tool_choice")
    if choice == "required" and not body.get("tools"):
        raise _invalid("tool_choice", "tool_choice 'required' needs 'tools' to choose from.")
    if isinstance(choice, dict):
        named = (choice.get("function") or {}).get("name")
        if named not in {(t.get("function") or {}).get("name") for t in body.get("tools") or []}:
            raise _invalid("tool_choice", f"tool_choice names the function '{named}', which is not in 'tools'.")
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None and body[name] > limits.context:
            raise _invalid(
                name,
                f"Invalid '{name}': the embedded model's context holds {limits.context} tokens, prompt included, so "
                f"'{name}' can be at most {limits.context} (got {body[name]}). A smaller value that the prompt leaves "
                "no room for is cut short at the end of the context (finish_reason 'length').",
            )


def validate_chat_body(body: Any, embedded: EmbeddedLimits | None = None) -> dict[str, Any]:
    """`body` if it is a well-formed chat-completion request (for the embedded model when `embedded` is given)."""
    if not isinstance(body, dict):
        raise InvalidRequestError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str):
        raise InvalidRequestError("Missing required parameter: 'model'.", param="model")
    _messages(body.get("messages"))
    for name, check in _FIELDS.items():
        if body.get(name) is not None:
            check(name, body[name])
    if embedded is not None:
        _within_embedded(body, embedded)
    return body
