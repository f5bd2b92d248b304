"""GET /metrics: Prometheus exposition of this app's registry (not part of the OpenAI-shaped API schema)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import MetricsDep
from api.metrics import CONTENT_TYPE

router = APIRouter(tags=["observability"])


@router.get("/metrics", include_in_schema=False)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE)
