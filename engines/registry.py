"""Which models exist: one `EngineSpec` per servable model id, with its aliases and how to build it.

Registration imports nothing heavy: a spec's factory imports its library lazily, so a missing optional extra only
fails (with an install hint) when that model is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Literal

from engines.base import Engine

Capability = Literal["transcription", "speech", "emotion", "vad", "chat"]
LoadState = Literal["not_loaded", "loading", "loaded"]


@dataclass(frozen=True)
class ServingState:
    """A model served by replicas elsewhere (a Ray Serve deployment), read live from whoever runs them."""

    deployment: str
    status: str  # as the deployment's controller says: HEALTHY, UPDATING, UPSCALING, DOWNSCALING, UNHEALTHY...
    replicas_running: int
    replicas_target: int
    ongoing: int  # requests this server has in flight to the replicas
    queued: int  # of those, requests waiting for a free replica slot
    state: LoadState  # loaded while a replica runs (each replica loads its weights on start)


@dataclass(frozen=True)
class EngineSpec:
    model_id: str
    capability: Capability
    factory: Callable[[], Engine]
    aliases: tuple[str, ...] = ()
    owned_by: str = "voxloop"
    description: str = ""
    # Threads that may call into the engine at once. Engines that batch concurrent calls internally ask for more.
    workers: int = 1
    # What the model can do, known before it is loaded, so requests it cannot serve fail fast with a 400.
    capabilities: Any = None
    # Cheap check that the weights are present (no loading): None when fine, else what is missing.
    probe: Callable[[], str | None] | None = None
    # Where the weights go (`cpu`, `cuda`, `cuda:1`, `mps`, `auto`; `remote` for another server) and roughly how
    # many bytes they take there (engines/footprint.py says where each figure comes from). The manager budgets
    # memory per device with these before loading; 0 means too small to count.
    device: str = "cpu"
    memory_bytes: int = 0
    # Learn again capabilities that live elsewhere (a remote's voices). Does I/O: callers run it off the event loop.
    refresh: Callable[[], None] | None = None
    # Served by replicas elsewhere (voxloop on Ray): their live state. Does I/O: callers run it off the event loop.
    serving: Callable[[], ServingState] | None = None


class UnknownModel(LookupError):
    def __init__(self, model: str, capability: Capability | None, known: Iterable[str]):
        self.model = model
        self.capability = capability
        self.known = sorted(known)
        what = f"{capability} model" if capability else "model"
        super().__init__(f"The {what} '{model}' does not exist. Available: {', '.join(self.known) or 'none'}.")


class EngineRegistry:
    """Model ids and aliases to specs. Built once per app from settings; no module state."""

    def __init__(self, specs: Iterable[EngineSpec] = ()):
        self._specs: dict[str, EngineSpec] = {}
        self._aliases: dict[tuple[Capability, str], str] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: EngineSpec) -> None:
        if spec.model_id in self._specs:
            raise ValueError(f"model id registered twice: {spec.model_id}")
        self._specs[spec.model_id] = spec
        for alias in spec.aliases:
            self._aliases.setdefault((spec.capability, alias), spec.model_id)

    def replace(self, model_id: str, **changes: Any) -> EngineSpec:
        """Swap fields of a registered spec (e.g. its factory and device, to serve it from elsewhere)."""
        spec = replace(self._specs[model_id], **changes)
        self._specs[model_id] = spec
        return spec

    def alias(self, capability: Capability, alias: str, model_id: str) -> None:
        """Point an alias (e.g. `whisper-1`) at a model id, replacing an earlier target."""
        self._aliases[(capability, alias)] = model_id

    def resolve(self, model: str, capability: Capability | None = None) -> EngineSpec:
        spec = self._specs.get(model)
        if spec is None and capability is not None:
            target = self._aliases.get((capability, model))
            spec = self._specs.get(target) if target else None
        if spec is None and capability is None:
            targets = [mid for (cap, a), mid in self._aliases.items() if a == model]
            spec = self._specs.get(targets[0]) if targets else None
        if spec is None or (capability is not None and spec.capability != capability):
            raise UnknownModel(model, capability, self.names(capability))
        return spec

    def names(self, capability: Capability | None = None) -> list[str]:
        ids = [s.model_id for s in self._specs.values() if capability in (None, s.capability)]
        aliases = [a for (cap, a) in self._aliases if capability in (None, cap)]
        return ids + aliases

    def specs(self, capability: Capability | None = None) -> list[EngineSpec]:
        return [s for s in self._specs.values() if capability in (None, s.capability)]
