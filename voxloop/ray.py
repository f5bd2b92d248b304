"""voxloop on Ray Serve: the same FastAPI app as the ingress deployment, each engine its own deployment.

`build_app(settings)` returns a Serve application: one `EngineReplica` deployment per served model (transcription,
speech, emotion, the embedded LLM), each with its own replicas, resources and autoscaling (`DeploymentOptions`, or
deploy/ray/serve.yaml), and the ingress running `create_app` with those models' registry specs swapped for Ray
proxies (engines/ray/proxy.py). The embedded LLM is deployed too (without an upstream LLM: chat through vLLM stays
a proxy, vLLM scales itself). Everything else (VAD, models not deployed) stays in the ingress replica, as
in-process. A realtime session stays on the ingress replica that accepted its socket; its engine calls go through
the handles.

The FastAPI app is not picklable (locks, threads), so the ingress wraps a small ASGI callable that builds it inside
the replica on first use (the lifespan event comes first).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from typing import Any

from api.settings import Settings
from engines.registry import EngineRegistry

APP_NAME = "voxloop"


@dataclass(frozen=True)
class DeploymentOptions:
    """Serve options for one engine deployment (any `serve.deployment` keyword)."""

    num_replicas: int | str | None = 1
    # Scheduling shares, not limits: small enough that `voxloop ray` on a 2-core machine places every replica.
    num_cpus: float = 0.5
    num_gpus: float = 0.0
    autoscaling_config: Mapping[str, Any] | None = None
    max_ongoing_requests: int = 4
    max_queued_requests: int = 64
    # Threads each replica's engine computes with (OMP_NUM_THREADS, which CTranslate2 and torch read). None: Ray's
    # default, the replica's `num_cpus` rounded down, at least 1 -- a 0.5-CPU Whisper replica decodes on one
    # thread where in-process `voxloop serve` uses up to four.
    threads: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def serve_kwargs(self) -> dict[str, Any]:
        actor: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.threads is not None:
            actor["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(self.threads)}}
        kwargs: dict[str, Any] = {
            "ray_actor_options": actor,
            "max_ongoing_requests": self.max_ongoing_requests,
            "max_queued_requests": self.max_queued_requests,
            **self.extra,
        }
        if self.autoscaling_config is not None:
            kwargs["autoscaling_config"] = dict(self.autoscaling_config)
        else:
            kwargs["num_replicas"] = self.num_replicas
        return kwargs


def default_models(settings: Settings) -> list[str]:
    """The voice loop's models: the default transcriber, the fast voice, the default emotion model and, without an
    upstream LLM, the embedded one."""
    models = [settings.whisper.default_model, settings.tts.fast_model, settings.emotion.default_model]
    if settings.chat_base_url is None:
        from voxloop.app import build_registry

        models += [spec.model_id for spec in build_registry(settings).specs("chat")]
    return models


def default_options(capability: str) -> DeploymentOptions:
    # llama.cpp runs one completion at a time per model (in-process, one engine thread): so does each replica.
    return DeploymentOptions(max_ongoing_requests=1) if capability == "chat" else DeploymentOptions()


def deployment_name(model_id: str) -> str:
    return f"engine-{model_id}"


def build_engine(settings: Settings, model_id: str) -> Any:
    """Inside an engine replica: build the model's engine from settings, as in-process would."""
    from voxloop.app import build_registry

    return build_registry(settings).resolve(model_id).factory()


def ray_registry_hook(deployed: Mapping[str, str], app_name: str):
    """A `create_app` hook: the deployed models' specs build Ray proxies instead of local engines."""

    def adapt(registry: EngineRegistry) -> None:
        from engines.ray.proxy import PROXIES, DeploymentClient, deployment_problem
        from engines.ray.state import DeploymentStates

        # One client per model, shared by every proxy the manager builds, so its in-flight count is the server's.
        clients = {model_id: DeploymentClient(name, app_name) for model_id, name in deployed.items()}
        states = DeploymentStates(app_name, clients)
        for model_id, name in deployed.items():
            spec = registry.resolve(model_id)
            proxy = PROXIES[spec.capability]
            registry.replace(
                spec.model_id,
                factory=lambda p=proxy, cl=clients[model_id], c=spec.capabilities: p(cl, c),
                serving=states.serving(model_id),  # /v1/models, /ready, /metrics: replicas, queue, load state
                device="remote",  # its memory is the replica's to budget
                memory_bytes=0,
                workers=max(1, spec.workers, 8),  # calls wait on handles, not on cores here
                probe=lambda n=name: deployment_problem(n, app_name),  # /ready: a replica runs
                owned_by="ray",
            )

    return adapt


class LazyVoxloopApp:
    """A picklable ASGI app that builds voxloop's FastAPI app inside the ingress replica on first use."""

    def __init__(self, settings: Settings, deployed: Mapping[str, str], app_name: str):
        self._settings = settings
        self._deployed = dict(deployed)
        self._app_name = app_name
        self._app: Any = None

    @property
    def app(self) -> Any:
        if self._app is None:
            from voxloop.app import create_app

            app = create_app(self._settings, ray_registry_hook(self._deployed, self._app_name))
            add_ray_routes(app, self._deployed, self._app_name)
            self._app = app
        return self._app

    # Serve names requests by route in its logs from `app.routes`, which trips on FastAPI's included routers; with
    # none listed (and no slash redirects) its logs name the prefix ("/") and its metrics carry no route tag.
    routes: list[Any] = []
    router = SimpleNamespace(redirect_slashes=False)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def add_ray_routes(app: Any, deployed: Mapping[str, str], app_name: str) -> None:
    """GET /v1/ray/deployments: each engine deployment's status and replica counts (from the Serve controller)."""
    import asyncio

    @app.get("/v1/ray/deployments", include_in_schema=False)
    async def deployments() -> dict[str, Any]:
        return await asyncio.to_thread(deployment_states, deployed, app_name)


def deployment_states(deployed: Mapping[str, str], app_name: str) -> dict[str, Any]:
    from ray import serve

    status = serve.status().applications.get(app_name)
    data = []
    for model_id, name in deployed.items():
        info = status.deployments.get(name) if status is not None else None
        data.append({
            "model": model_id,
            "deployment": name,
            "status": str(info.status.value) if info is not None else "MISSING",
            "replicas": {str(k.value if hasattr(k, "value") else k): v
                         for k, v in (info.replica_states.items() if info is not None else ())},
        })
    return {"object": "list", "data": data}


def build_app(
    settings: Settings | None = None,
    *,
    models: list[str] | None = None,
    options: Mapping[str, DeploymentOptions] | None = None,
    ingress: DeploymentOptions | None = None,
    app_name: str = APP_NAME,
) -> Any:
    """The Serve application: engine deployments for `models` (default: the voice loop's) and the ingress."""
    from ray import serve

    from engines.ray.replica import EngineReplica
    from voxloop.app import build_registry

    settings = settings or Settings()
    registry = build_registry(settings)
    options = options or {}
    deployed: dict[str, str] = {}
    bound = []
    for model in dict.fromkeys(models or default_models(settings)):
        spec = registry.resolve(model)
        if spec.capability not in ("transcription", "speech", "emotion", "chat"):
            raise ValueError(f"{model} is a {spec.capability} model; Ray serves transcription, speech, emotion and "
                             "the embedded LLM")
        name = deployment_name(spec.model_id)
        deployed[spec.model_id] = name
        opts = options.get(spec.model_id, default_options(spec.capability))
        deployment = serve.deployment(EngineReplica, name=name, **opts.serve_kwargs())
        # The replica runs its engine on as many threads as in-process gives it (Whisper's parallel requests).
        bound.append(deployment.bind(partial(build_engine, settings, spec.model_id), spec.model_id, spec.workers))

    lazy = LazyVoxloopApp(settings, deployed, app_name)

    @serve.ingress(lazy)
    class VoxloopIngress:
        def __init__(self, *engines: Any):
            self._engines = engines  # handles; the proxies find theirs by name (they are made in the app)

    ingress_opts = ingress or DeploymentOptions(num_cpus=0.25, max_ongoing_requests=256, max_queued_requests=-1)
    return serve.deployment(VoxloopIngress, name="ingress", **ingress_opts.serve_kwargs()).bind(*bound)


def run(settings: Settings, *, address: str | None = None) -> None:
    """`voxloop ray`: join (or start) a Ray cluster and serve until interrupted."""
    import ray
    from ray import serve

    ray.init(address=address, ignore_reinit_error=True)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:  # Ctrl-C: take the app down with the local Ray this command started
        serve.delete(APP_NAME)
        ray.shutdown()


def app_builder(args: dict[str, Any]) -> Any:
    """`serve deploy` / `serve run` entry (deploy/ray/serve.yaml): settings from VOXLOOP_* in the replicas' env;
    `args.models` lists the models that get their own deployment (default: the voice loop's). Replicas, resources
    and autoscaling come from the config file's `deployments:` section, by deployment name (`engine-<model>`)."""
    models = args.get("models")
    return build_app(Settings(), models=list(models) if models else None)
