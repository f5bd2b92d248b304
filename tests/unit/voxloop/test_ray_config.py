"""deploy/ray/serve.yaml and the RayService manifest name the deployments `voxloop.ray` builds, and Serve accepts
the config (its own schema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

pytest.importorskip("ray", reason="needs the ray extra")
from ray.serve.schema import ServeDeploySchema  # noqa: E402

from api.settings import Settings  # noqa: E402
from voxloop.app import build_registry  # noqa: E402
from voxloop.ray import default_models, deployment_name  # noqa: E402

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[3]


def _apps():
    serve_yaml = yaml.safe_load((ROOT / "deploy/ray/serve.yaml").read_text())
    rayservice = yaml.safe_load((ROOT / "deploy/ray/rayservice.yaml").read_text())
    return [serve_yaml, yaml.safe_load(rayservice["spec"]["serveConfigV2"])]


@pytest.mark.parametrize("config", _apps(), ids=["serve.yaml", "rayservice.yaml"])
def test_config_names_the_deployments_the_app_builds(config) -> None:
    ServeDeploySchema.parse_obj(config)
    registry = build_registry(Settings())
    (app,) = config["applications"]
    models = app["args"]["models"]
    assert all(registry.resolve(m) for m in models)
    named = {d["name"] for d in app["deployments"]}
    assert named == {"ingress", *(deployment_name(m) for m in models)}


def test_the_embedded_llm_is_deployed_unless_chat_goes_upstream() -> None:
    assert "smollm2-135m-instruct" in default_models(Settings())
    assert "smollm2-135m-instruct" not in default_models(Settings(chat_base_url="http://vllm:8000/v1"))
