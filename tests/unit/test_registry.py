"""Pipeline registry: routing by model type, and the errors for unknown or doubly registered types."""

from types import SimpleNamespace

import pytest

from doppler.inference.registry import PipelineRegistry, RegistryError
from doppler.manifest import parse_manifest


def recording_factory(tag):
    return lambda manifest, contexts: (tag, manifest, contexts)


def test_routes_by_model_type_and_passes_manifest_and_contexts(tiny_manifest):
    registry = PipelineRegistry()
    registry.register_pipeline("diffusion", recording_factory("diffusion"))
    registry.register_pipeline("toy", recording_factory("toy"))
    manifest = parse_manifest(tiny_manifest)
    contexts = {"device": object(), "rules": object()}
    assert registry.create_pipeline(manifest, contexts) == ("diffusion", manifest, contexts)
    toy = SimpleNamespace(model_type="toy")
    assert registry.create_pipeline(toy, {})[0] == "toy"
    assert registry.registered() == ("diffusion", "toy")


def test_unknown_type_lists_registered():
    registry = PipelineRegistry()
    registry.register_pipeline("toy", recording_factory("toy"))
    registry.register_pipeline("diffusion", recording_factory("diffusion"))
    with pytest.raises(RegistryError, match=r"^no pipeline for model type 'llm'; registered: diffusion, toy$"):
        registry.create_pipeline(SimpleNamespace(model_type="llm"), {})


def test_empty_registry_says_so():
    with pytest.raises(RegistryError, match=r"registered: none$"):
        PipelineRegistry().create_pipeline(SimpleNamespace(model_type="diffusion"), {})


def test_a_type_is_registered_once():
    registry = PipelineRegistry()
    registry.register_pipeline("diffusion", recording_factory("a"))
    with pytest.raises(RegistryError, match=r"^model type 'diffusion' is already registered"):
        registry.register_pipeline("diffusion", recording_factory("b"))
    assert registry.create_pipeline(SimpleNamespace(model_type="diffusion"), {})[0] == "a"


def test_registries_are_independent():
    first, second = PipelineRegistry(), PipelineRegistry()
    first.register_pipeline("toy", recording_factory("toy"))
    assert second.registered() == ()
