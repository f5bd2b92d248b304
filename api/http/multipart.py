"""Multipart form parsing for the audio endpoints, the way the OpenAI SDK and curl send it.

The SDK flattens arrays as `name[]` and objects as `name[key]` (openai-python `_serialize_multipartform`, array
format "brackets"); curl users write `name=value` repeatedly or put JSON in one field. Both arrive here as one dict
validated by the endpoint's pydantic model, so Swagger, the SDK and curl get the same rules and the same errors.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request

from api.http.errors import InvalidRequestError, UnsupportedMediaError, validation_error

M = TypeVar("M", bound=BaseModel)
_NESTED = re.compile(r"^([A-Za-z_][\w]*)\[([^\]]*)\]$")


def _is_list_field(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    if field is None:
        return False
    annotation = field.annotation
    return get_origin(annotation) is list or any(get_origin(a) is list for a in get_args(annotation))


def form_to_dict(form: FormData, model: type[BaseModel], file_field: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key == file_field:
            continue
        match = _NESTED.match(key)
        if match and match.group(2) == "":  # name[] -> list
            data.setdefault(match.group(1), []).append(value)
        elif match:  # name[key] -> object
            target = data.setdefault(match.group(1), {})
            if isinstance(target, dict):
                target[match.group(2)] = value
        elif _is_list_field(model, key):
            data.setdefault(key, []).append(value)
        else:
            data[key] = value
    return data


async def parse_audio_form(request: Request, model: type[M], file_field: str = "file") -> tuple[M, UploadFile]:
    """Validate a multipart audio request: the form model and the uploaded file, or an OpenAI 4xx."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise UnsupportedMediaError(
            f"This endpoint takes multipart/form-data with a '{file_field}' field, not '{content_type or 'no content type'}'.",
            param=file_field,
        )
    try:
        form = await request.form(max_files=1, max_fields=64)
    except (MultiPartException, HTTPException) as exc:  # Starlette re-raises parser errors as a 400 HTTPException
        reason = getattr(exc, "message", None) or getattr(exc, "detail", "")
        raise InvalidRequestError(f"The multipart body could not be parsed: {reason}", param=file_field) from exc
    try:
        parsed = model.model_validate(form_to_dict(form, model, file_field))
    except ValidationError as exc:
        raise validation_error(list(exc.errors())) from exc
    upload = form.get(file_field)
    if not isinstance(upload, UploadFile):
        what = "a text field" if upload is not None else "missing"
        raise InvalidRequestError(f"'{file_field}' must be an uploaded audio file ({what}).", param=file_field)
    return parsed, upload


def multipart_openapi(model: type[BaseModel], file_field: str = "file") -> dict[str, Any]:
    """`openapi_extra` documenting the form for Swagger UI: the file upload plus every field of `model`."""
    properties: dict[str, Any] = {file_field: {"type": "string", "format": "binary", "description": "The audio file."}}
    required = [file_field]
    schema = model.model_json_schema()
    for name, prop in schema.get("properties", {}).items():
        prop = _inline(prop)
        if prop.get("type") == "array":
            name = f"{name}[]"
        properties[name] = prop
        if name in schema.get("required", []):
            required.append(name)
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "properties": properties, "required": required}}},
        }
    }


def _inline(prop: dict[str, Any]) -> dict[str, Any]:
    # Nested objects ($ref) travel as a JSON string in one form field; document them as such.
    variants = prop.get("anyOf", [])
    if "$ref" in prop or any("$ref" in v for v in variants):
        kept = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
        return {**kept, "type": "string"}
    if variants:
        non_null = [v for v in variants if v.get("type") != "null"]
        if len(non_null) == 1:
            rest = {k: v for k, v in prop.items() if k != "anyOf"}
            return {**rest, **non_null[0]}
    return prop



