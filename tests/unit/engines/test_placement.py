"""Placement policy: device -> memory pool, budgets per pool, and which idle models eviction picks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engines.placement import MemoryBudget, choose_evictions, memory_pool
from engines.registry import EngineSpec


@dataclass
class Loaded:
    name: str
    memory: int
    last_used: float


@pytest.mark.parametrize(
    ("device", "pool"),
    [("cuda", "cuda:0"), ("CUDA:1", "cuda:1"), ("auto", "cuda:0"), ("cpu", "cpu"), ("mps", "mps"),
     ("remote", "remote")],
)
def test_devices_map_to_pools(device: str, pool: str) -> None:
    assert memory_pool(device) == pool


def test_gpu_budget_applies_to_each_gpu_and_cpu_budget_to_system_memory() -> None:
    budget = MemoryBudget(gpu=8, cpu=4)
    assert [budget.limit(p) for p in ("cuda:0", "cuda:3", "mps", "cpu", "remote")] == [8, 8, 8, 4, None]
    assert MemoryBudget().limit("cuda:0") is None


def test_estimate_override_by_model_id() -> None:
    spec = EngineSpec("m", "speech", object, memory_bytes=100)
    assert MemoryBudget().estimate(spec) == 100
    assert MemoryBudget(estimates={"m": 7}).estimate(spec) == 7


def test_evictions_oldest_first_and_only_what_is_needed() -> None:
    old, mid, new = Loaded("old", 300, 1.0), Loaded("mid", 300, 2.0), Loaded("new", 300, 3.0)
    assert choose_evictions(100, 900, 1000, [new, old, mid]) == []
    assert choose_evictions(300, 900, 1000, [new, old, mid]) == [old]
    assert choose_evictions(650, 900, 1000, [new, old, mid]) == [old, mid]


def test_no_eviction_plan_when_even_all_idle_models_are_not_enough() -> None:
    # 900 used, of which only 300 idle: 800 can never fit beside the 600 in use.
    assert choose_evictions(800, 900, 1000, [Loaded("idle", 300, 1.0)]) is None
    assert choose_evictions(400, 900, 1000, [Loaded("idle", 300, 1.0)]) == [Loaded("idle", 300, 1.0)]
