"""Pipeline registry: a manifest's `modelType` chooses the pipeline factory that builds its pipeline."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# factory(manifest, contexts) -> pipeline; `contexts` carries what the pipeline needs from its host (device,
# rule book, settings), by name.
PipelineFactory = Callable[[Any, Mapping[str, Any]], Any]


class RegistryError(LookupError):
    """An unknown model type, or a model type registered twice."""


class PipelineRegistry:
    """Model type -> pipeline factory. One per host (the worker's api, a test), filled at start-up."""

    def __init__(self) -> None:
        self._factories: dict[str, PipelineFactory] = {}

    def register_pipeline(self, model_type: str, factory: PipelineFactory) -> None:
        if model_type in self._factories:
            raise RegistryError(f"model type {model_type!r} is already registered (to {self._factories[model_type]!r})")
        self._factories[model_type] = factory

    def registered(self) -> tuple[str, ...]:
        return tuple(sorted(self._factories))

    def create_pipeline(self, manifest, contexts: Mapping[str, Any]):
        """The pipeline for `manifest` (anything with a `model_type`), built by the factory of its type."""
        factory = self._factories.get(manifest.model_type)
        if factory is None:
            known = ", ".join(self.registered()) or "none"
            raise RegistryError(f"no pipeline for model type {manifest.model_type!r}; registered: {known}")
        return factory(manifest, contexts)
