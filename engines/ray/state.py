"""The live state of an application's engine deployments, for /v1/models, /ready and /metrics.

Replicas (running and the controller's target), the deployment's status and each replica's request limit come from
the Serve controller (`get_serve_details`, what `serve status` and the dashboard read), fetched at most once per
`max_age` seconds for all deployments at once. Requests in flight come from this server's own `DeploymentClient`s;
those beyond the running replicas' slots (`max_ongoing_requests` each) wait in the handle's queue. With one
ingress replica (the default) that is the deployment's queue; with several, each reports its own share.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from engines.ray.proxy import DeploymentClient
from engines.registry import LoadState, ServingState


@dataclass(frozen=True)
class ControllerView:
    """What the Serve controller says about one deployment."""

    status: str
    running: int
    target: int
    max_ongoing_requests: int


def serve_details(app_name: str) -> dict[str, ControllerView]:
    """One call to the Serve controller: each deployment of `app_name`, by deployment name."""
    from ray.serve.context import _get_global_client

    return controller_views(_get_global_client().get_serve_details(), app_name)


def controller_views(details: Mapping[str, Any], app_name: str) -> dict[str, ControllerView]:
    """The controller's `ServeInstanceDetails` (statuses as Serve's str enums) as a view per deployment."""
    app = (details.get("applications") or {}).get(app_name) or {}
    views = {}
    for name, info in (app.get("deployments") or {}).items():
        replicas = info.get("replicas") or []
        views[name] = ControllerView(
            status=_text(info.get("status", "UNKNOWN")),
            running=sum(1 for r in replicas if _text(r.get("state")) == "RUNNING"),
            target=int(info.get("target_num_replicas") or 0),
            max_ongoing_requests=int((info.get("deployment_config") or {}).get("max_ongoing_requests") or 1),
        )
    return views


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))  # an enum's value, not `ReplicaState.RUNNING`


def load_state(running: int, target: int) -> LoadState:
    if running > 0:
        return "loaded"
    return "loading" if target > 0 else "not_loaded"


class DeploymentStates:
    """`of(model_id)` is the `EngineSpec.serving` of each deployed model (voxloop/ray.py wires it)."""

    def __init__(self, app_name: str, clients: Mapping[str, DeploymentClient], *, max_age: float = 1.0,
                 fetch: Callable[[str], Mapping[str, ControllerView]] = serve_details,
                 clock: Callable[[], float] = time.monotonic):
        self._app_name = app_name
        self._clients = dict(clients)  # model id -> its client (the deployment's name is on it)
        self._max_age = max_age
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._views: Mapping[str, ControllerView] = {}
        self._fetched_at: float | None = None

    def _controller(self) -> Mapping[str, ControllerView]:
        with self._lock:
            now = self._clock()
            if self._fetched_at is None or now - self._fetched_at >= self._max_age:
                self._views = self._fetch(self._app_name)
                self._fetched_at = now
            return self._views

    def of(self, model_id: str) -> ServingState:
        client = self._clients[model_id]
        view = self._controller().get(client.deployment)
        ongoing = client.ongoing
        if view is None:
            return ServingState(deployment=client.deployment, status="MISSING", replicas_running=0,
                                replicas_target=0, ongoing=ongoing, queued=ongoing, state="not_loaded")
        slots = view.running * view.max_ongoing_requests
        return ServingState(
            deployment=client.deployment,
            status=view.status,
            replicas_running=view.running,
            replicas_target=view.target,
            ongoing=ongoing,
            queued=max(0, ongoing - slots),
            state=load_state(view.running, view.target),
        )

    def serving(self, model_id: str) -> Callable[[], Any]:
        return lambda: self.of(model_id)
