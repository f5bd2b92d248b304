"""Wire-model basics shared by every endpoint."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

logger = logging.getLogger(__name__)


class OpenAIBaseModel(BaseModel):
    """Request models accept fields OpenAI may add later, and log them instead of failing."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    @model_validator(mode="after")
    def _log_unknown_fields(self) -> "OpenAIBaseModel":
        if self.model_extra:
            logger.info("%s: ignoring unknown fields %s", type(self).__name__, sorted(self.model_extra))
        return self


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": text}
    for status, text in {
        400: "Invalid request (OpenAI error body).",
        401: "Missing or wrong API key.",
        404: "Unknown model.",
        413: "Upload larger than the configured limit.",
        429: "The model is busy; retry after `Retry-After` seconds.",
        503: "The engine cannot be loaded here, or its device's memory budget is held by models in use (retry after "
        "`Retry-After` seconds).",
    }.items()
}
