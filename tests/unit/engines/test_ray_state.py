"""Per-deployment state (`voxloop ray`): replicas, queue and load state, and how /v1/models, /ready and /metrics
show it. The Serve controller is replaced by `controller_view`, a test double returning what its
`get_serve_details` would say (the real controller: tests/e2e/test_ray_serve.py); the app, routes and client are
real."""

from __future__ import annotations

import httpx
import pytest

pytest.importorskip("ray", reason="needs the ray extra")

from api.settings import Settings  # noqa: E402
from engines.base import CancelToken  # noqa: E402
from engines.ray.proxy import DeploymentClient  # noqa: E402
from engines.ray.state import ControllerView, DeploymentStates, controller_views  # noqa: E402
from engines.registry import EngineRegistry  # noqa: E402
from tests.unit.api.test_metrics import value  # noqa: E402
from tests.unit.engines.test_ray_proxy import StandInHandle  # noqa: E402
from voxloop.app import create_app  # noqa: E402

pytestmark = pytest.mark.ray


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def controller_view(views: dict[str, ControllerView], calls: list[str]):
    def fetch(app_name: str) -> dict[str, ControllerView]:
        calls.append(app_name)
        return dict(views)

    return fetch


def test_queue_is_what_the_running_replicas_slots_cannot_take_and_the_controller_is_read_once_a_second() -> None:
    handle = StandInHandle(iter(()))
    client = DeploymentClient("engine-m", "voxloop", get_handle=lambda *_: handle)
    views = {"engine-m": ControllerView(status="UPSCALING", running=1, target=2, max_ongoing_requests=2)}
    calls: list[str] = []
    clock = Clock()
    states = DeploymentStates("voxloop", {"m": client}, fetch=controller_view(views, calls), clock=clock)

    streams = []
    for _ in range(3):  # three calls in flight: two in the replica's slots, one waiting
        handle.outcome = iter([b"chunk"] * 2)
        stream = client.stream("synthesize", "hi", object(), cancel=CancelToken())
        assert next(stream) == b"chunk"
        streams.append(stream)
    state = states.of("m")
    assert (state.replicas_running, state.replicas_target, state.ongoing, state.queued) == (1, 2, 3, 1)
    assert state.state == "loaded" and state.status == "UPSCALING" and state.deployment == "engine-m"
    for stream in streams:
        assert list(stream) == [b"chunk"]  # drained: the calls are no longer in flight
    assert states.of("m").ongoing == 0 and states.of("m").queued == 0
    assert calls == ["voxloop"]  # within max_age, one controller read served every call
    clock.now = 1.5
    views["engine-m"] = ControllerView(status="UNHEALTHY", running=0, target=1, max_ongoing_requests=2)
    state = states.of("m")
    assert calls == ["voxloop", "voxloop"]
    assert (state.status, state.replicas_running, state.state) == ("UNHEALTHY", 0, "loading")


def test_the_controllers_details_become_views_with_plain_statuses() -> None:
    from ray.serve._private.common import DeploymentStatus, ReplicaState

    details = {"applications": {"voxloop": {"deployments": {"engine-m": {
        "status": DeploymentStatus.UPSCALING, "target_num_replicas": 3,
        "deployment_config": {"max_ongoing_requests": 5},
        "replicas": [{"state": ReplicaState.RUNNING}, {"state": ReplicaState.STARTING},
                     {"state": ReplicaState.RUNNING}],
    }}}, "other": {}}}
    assert controller_views(details, "voxloop") == {
        "engine-m": ControllerView(status="UPSCALING", running=2, target=3, max_ongoing_requests=5)}
    assert controller_views(details, "absent") == {}


def test_a_deployment_the_controller_does_not_list_is_missing_and_not_loaded() -> None:
    client = DeploymentClient("engine-m", "voxloop", get_handle=lambda *_: StandInHandle(None))
    states = DeploymentStates("voxloop", {"m": client}, fetch=controller_view({}, []))
    state = states.of("m")
    assert (state.status, state.state, state.replicas_target) == ("MISSING", "not_loaded", 0)


async def test_models_ready_and_metrics_report_the_deployment(tmp_path) -> None:
    handle = StandInHandle(None)
    client = DeploymentClient("engine-piper-joe", "voxloop", get_handle=lambda *_: handle)
    views = {"engine-piper-joe": ControllerView(status="HEALTHY", running=2, target=3, max_ongoing_requests=4)}
    states = DeploymentStates("voxloop", {"piper-joe": client}, fetch=controller_view(views, []))

    def adapt(registry: EngineRegistry) -> None:  # what voxloop/ray.py's hook does, minus the proxies
        registry.replace("piper-joe", serving=states.serving("piper-joe"))
        registry.replace("whisper-tiny.en", serving=lambda: (_ for _ in ()).throw(ConnectionError("no controller")))

    app = create_app(Settings(cache_dir=tmp_path, warmup=[]), adapt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        cards = {m["id"]: m for m in (await http.get("/v1/models")).json()["data"]}
        one = (await http.get("/v1/models/piper-joe")).json()
        ready = await http.get("/ready")
        text = (await http.get("/metrics")).text
    want = {"name": "engine-piper-joe", "status": "HEALTHY", "replicas_running": 2, "replicas_target": 3,
            "ongoing_requests": 0, "queued_requests": 0}
    assert cards["piper-joe"]["deployment"] == want and cards["piper-joe"]["state"] == "loaded"
    assert one["deployment"] == want
    assert cards["whisper-tiny.en"]["deployment"] is None  # unreadable: no deployment card, no 500
    body = ready.json()
    assert body["deployments"]["piper-joe"] == {"state": "loaded", **want}
    assert ready.status_code == 503 and "no controller" in body["problems"]["whisper-tiny.en"]
    labels = {"model": "piper-joe", "deployment": "engine-piper-joe"}
    assert value(text, "voxloop_deployment_replicas", kind="running", **labels) == 2
    assert value(text, "voxloop_deployment_replicas", kind="target", **labels) == 3
    assert value(text, "voxloop_deployment_queued_requests", **labels) == 0
    assert value(text, "voxloop_deployment_loaded", **labels) == 1
