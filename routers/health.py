"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.models.service import deployment_card, serving_states
from engines.registry import ServingState

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the default models can be loaded")
async def ready(services: ServicesDep) -> JSONResponse:
    problems = {}
    specs = services.default_specs()
    # Remote engines are checked too: a configured upstream that is down makes its models unusable.
    remote = services.settings.remote.model_ids()
    specs += [s for s in services.registry.specs() if s.model_id in remote and s not in specs]
    for spec in specs:
        # Probes may do I/O (a remote engine's GET /models): keep them off the event loop.
        problem = await run_in_threadpool(spec.probe) if spec.probe else None
        if problem:
            problems[spec.model_id] = problem
    # Models in their own deployments (`voxloop ray`): replicas, queue and load state, as /v1/models shows them.
    deployments = {}
    for model_id, state in (await run_in_threadpool(serving_states, services.registry.specs())).items():
        if isinstance(state, ServingState):
            deployments[model_id] = {"state": state.state, **deployment_card(state).model_dump()}
        else:  # its controller cannot be read
            problems[model_id] = "; ".join(filter(None, (problems.get(model_id), state)))
    warmup = services.warmup
    if warmup is not None:
        problems.update({f"warmup:{role}": reason for role, reason in warmup.failed.items()})
    models = {spec.model_id: deployments[spec.model_id]["state"] if spec.model_id in deployments
              else services.manager.state(spec.model_id) for spec in specs}
    status = "not_ready" if problems else "warming" if warmup is not None and not warmup.done else "ready"
    body = {"status": status, "models": models, "problems": problems,
            "warming": list(warmup.pending) if warmup is not None else []}
    if deployments:
        body["deployments"] = deployments
    return JSONResponse(body, status_code=200 if status == "ready" else 503)
