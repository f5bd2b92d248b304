"""Wire models of /v1/models."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DeploymentCard(BaseModel):
    """Where a model served by replicas elsewhere (`voxloop ray`: its own Ray Serve deployment) stands now."""

    name: str = Field(description="The deployment's name.")
    status: str = Field(description="As its controller says: HEALTHY, UPDATING, UPSCALING, DOWNSCALING, UNHEALTHY.")
    replicas_running: int = Field(description="Replicas serving now.")
    replicas_target: int = Field(description="Replicas the controller is scaling to (autoscaling moves it).")
    ongoing_requests: int = Field(description="Requests this server has in flight to the deployment.")
    queued_requests: int = Field(description="Of those, requests waiting for a free replica slot.")


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
    deployment: DeploymentCard | None = Field(
        None, description="Set when the model runs in its own deployment (`voxloop ray`); `state` is then its replicas'."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ModelDeleted(BaseModel):
    id: str
    object: Literal["model"] = "model"
    deleted: bool
