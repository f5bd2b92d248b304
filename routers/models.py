"""GET/DELETE /v1/models: what this server can serve, whether it is loaded, and unloading on demand."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import Services, ServicesDep
from api.http.errors import ModelNotFoundError
from api.http.schemas import ERROR_RESPONSES
from api.models.protocol import ModelCard, ModelDeleted, ModelList
from api.models.service import deployment_card, serving_states
from engines.registry import EngineSpec, ServingState, UnknownModel

router = APIRouter(tags=["models"])


def _card(services: Services, spec: EngineSpec, serving: ServingState | str | None = None) -> ModelCard:
    deployed = serving if isinstance(serving, ServingState) else None
    return ModelCard(
        id=spec.model_id,
        created=services.started_at,
        owned_by=spec.owned_by,
        capability=spec.capability,
        # A model in its own deployment is loaded where its replicas run, not in this process.
        state=deployed.state if deployed is not None else services.manager.state(spec.model_id),
        aliases=list(spec.aliases),
        description=spec.description,
        device=spec.device,
        memory_bytes=services.manager.memory(spec),
        deployment=deployment_card(deployed) if deployed is not None else None,
    )


def _spec_or_404(services: Services, model_id: str) -> EngineSpec:
    try:
        return services.registry.resolve(model_id)
    except UnknownModel as exc:
        raise ModelNotFoundError(str(exc), param="model") from exc


@router.get("/v1/models", response_model=ModelList, responses=ERROR_RESPONSES)
async def list_models(services: ServicesDep) -> ModelList:
    specs = services.registry.specs()
    serving = await run_in_threadpool(serving_states, specs)  # asks the Ray controller, where there is one
    cards = [_card(services, spec, serving.get(spec.model_id)) for spec in specs]
    for model in await services.chat.upstream_models():  # the upstream LLM's models, as vLLM lists them
        cards.append(
            ModelCard(id=str(model["id"]), created=int(model.get("created") or services.started_at),
                      owned_by=str(model.get("owned_by") or "upstream"), capability="chat", state="loaded",
                      description=f"served by {services.chat.upstream}")
        )
    return ModelList(data=cards)


@router.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=ERROR_RESPONSES)
async def retrieve_model(model_id: str, services: ServicesDep) -> ModelCard:
    spec = _spec_or_404(services, model_id)
    serving = await run_in_threadpool(serving_states, [spec])
    return _card(services, spec, serving.get(spec.model_id))


@router.delete("/v1/models/{model_id:path}", response_model=ModelDeleted, responses=ERROR_RESPONSES)
async def unload_model(model_id: str, services: ServicesDep) -> ModelDeleted:
    """Unload the model's weights now (they load again on next use). `deleted` is false if it was not loaded."""
    spec = _spec_or_404(services, model_id)
    return ModelDeleted(id=spec.model_id, deleted=await services.manager.unload(spec.model_id))
