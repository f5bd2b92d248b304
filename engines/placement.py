"""Placement policy: which memory pool a model draws on, each pool's budget, and which idle models to evict.

Pure decisions, no locks or loading: the model manager asks `MemoryBudget` how much a model needs and how much
its pool allows, and `choose_evictions` which idle models to unload (least recently used first) to make it fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from engines.registry import EngineSpec


def memory_pool(device: str) -> str:
    """The memory a device draws on: `cuda` means GPU 0, and CTranslate2's `auto` counts as GPU 0 (the worst case:
    budgets exist to protect the GPU). Each GPU is its own pool; `remote` engines use another server's memory."""
    device = device.strip().lower()
    if device in ("cuda", "auto"):
        return "cuda:0"
    return device


def is_gpu_pool(pool: str) -> bool:
    return pool.startswith("cuda") or pool == "mps"


@dataclass(frozen=True)
class MemoryBudget:
    """Budgets in bytes: `gpu` applies to each GPU separately, `cpu` to system memory; None is unlimited."""

    gpu: int | None = None
    cpu: int | None = None
    # Operator-given footprints by model id, replacing the engine's declared estimate.
    estimates: Mapping[str, int] = field(default_factory=dict)

    def limit(self, pool: str) -> int | None:
        if is_gpu_pool(pool):
            return self.gpu
        return self.cpu if pool == "cpu" else None

    def estimate(self, spec: EngineSpec) -> int:
        return int(self.estimates.get(spec.model_id, spec.memory_bytes))


class Resident(Protocol):
    """What eviction needs to know of a loaded model."""

    @property
    def memory(self) -> int: ...

    @property
    def last_used(self) -> float: ...


R = TypeVar("R", bound=Resident)


def choose_evictions(needed: int, used: int, limit: int, idle: Iterable[R]) -> list[R] | None:
    """The least recently used idle models whose unloading makes `needed` fit beside `used`, or None if even
    unloading all of them is not enough. An empty list means it already fits."""
    chosen: list[R] = []
    for model in sorted(idle, key=lambda m: m.last_used):
        if used + needed <= limit:
            break
        chosen.append(model)
        used -= model.memory
    return chosen if used + needed <= limit else None
