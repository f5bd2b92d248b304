"""Live state of models served by replicas elsewhere (`EngineSpec.serving`), for /v1/models, /ready and /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from api.models.protocol import DeploymentCard
from engines.registry import EngineSpec, ServingState

log = logging.getLogger("voxloop.models")


def serving_states(specs: Iterable[EngineSpec]) -> dict[str, ServingState | str]:
    """Each served-elsewhere model's state, or why it could not be read (its controller unreachable). Does I/O:
    run it off the event loop."""
    states: dict[str, ServingState | str] = {}
    for spec in specs:
        if spec.serving is None:
            continue
        try:
            states[spec.model_id] = spec.serving()
        except Exception as exc:  # a state we cannot read is reported, never a 500
            log.warning("cannot read the serving state of %s: %s", spec.model_id, exc)
            states[spec.model_id] = f"its deployment's state cannot be read: {exc}"
    return states


def deployment_card(state: ServingState) -> DeploymentCard:
    return DeploymentCard(
        name=state.deployment,
        status=state.status,
        replicas_running=state.replicas_running,
        replicas_target=state.replicas_target,
        ongoing_requests=state.ongoing,
        queued_requests=state.queued,
    )
