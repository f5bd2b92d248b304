"""GET/DELETE /v1/models: what this server can serve, whether it is loaded, and unloading on demand."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Services, ServicesDep
from api.http.errors import ModelNotFoundError
from api.http.schemas import ERROR_RESPONSES
from api.models.protocol import ModelCard, ModelDeleted, ModelList
from engines.registry import EngineSpec, UnknownModel

router = APIRouter(tags=["models"])


def _card(services: Services, spec: EngineSpec) -> ModelCard:
    return ModelCard(
        id=spec.model_id,
        created=services.started_at,
        owned_by=spec.owned_by,
        capability=spec.capability,
        state=services.manager.state(spec.model_id),
        aliases=list(spec.aliases),
        description=spec.description,
        device=spec.device,
        memory_bytes=services.manager.memory(spec),
    )


def _spec_or_404(services: Services, model_id: str) -> EngineSpec:
    try:
        return services.registry.resolve(model_id)
    except UnknownModel as exc:
        raise ModelNotFoundError(str(exc), param="model") from exc


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(services: ServicesDep) -> ModelList:
    cards = [_card(services, spec) for spec in services.registry.specs()]
    for model in await services.chat.upstream_models():  # the upstream LLM's models, as vLLM lists them
        cards.append(
            ModelCard(id=str(model["id"]), created=int(model.get("created") or services.started_at),
                      owned_by=str(model.get("owned_by") or "upstream"), capability="chat", state="loaded",
                      description=f"served by {services.chat.upstream}")
        )
    return ModelList(data=cards)


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=ERROR_RESPONSES)
async def retrieve_model(model_id: str, services: ServicesDep) -> ModelCard:
    return _card(services, _spec_or_404(services, model_id))


@router.delete("/v1/models/{model_id:path}", response_model=ModelDeleted, responses=ERROR_RESPONSES)
async def unload_model(model_id: str, services: ServicesDep) -> ModelDeleted:
    """Unload the model's weights now (they load again on next use). `deleted` is false if it was not loaded."""
    spec = _spec_or_404(services, model_id)
    return ModelDeleted(id=spec.model_id, deleted=await services.manager.unload(spec.model_id))
