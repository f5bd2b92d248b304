"""Wire models of /v1/models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    # voxloop extensions, ignored by OpenAI clients:
    capability: str = Field(description="transcription, speech, emotion, vad or chat.")
    state: Literal["not_loaded", "loading", "loaded"] = Field(description="Whether the weights are in memory now.")
    aliases: list[str] = Field(default_factory=list)
    description: str = ""
    device: str | None = Field(None, description="Where the weights go: cpu, cuda, cuda:1, mps, auto, or remote.")
    memory_bytes: int | None = Field(
        None,
        description="Memory the model takes on its device: measured once loaded where the engine can tell, else the "
        "estimate that memory budgets count.",
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ModelDeleted(BaseModel):
    id: str
    object: Literal["model"] = "model"
    deleted: bool
