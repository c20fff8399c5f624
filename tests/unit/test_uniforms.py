"""Every uniform dataclass matches the struct of the same name in its kernel file."""

import re
from dataclasses import is_dataclass
from importlib import import_module
from pathlib import Path
from pkgutil import iter_modules

import pytest

import doppler.ops
from doppler.gpu.uniforms import pack, wgsl

WGSL = Path(__file__).resolve().parents[2] / "wgsl"


def _uniform_classes():
    for info in iter_modules(doppler.ops.__path__):
        module = import_module(f"doppler.ops.{info.name}")
        for obj in vars(module).values():
            if is_dataclass(obj) and hasattr(obj, "WGSL_NAME") and obj.__module__ == module.__name__:
                yield info.name, obj


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace(",}", "}").replace(", }", " }")).strip()


@pytest.mark.parametrize("module,cls", list(_uniform_classes()), ids=lambda v: getattr(v, "__name__", v))
def test_uniform_matches_wgsl_struct(module, cls):
    sources = " ".join(p.read_text() for p in WGSL.rglob("*.wgsl"))  # kernels and their lib/ includes
    found = re.findall(rf"struct {cls.WGSL_NAME} \{{[^}}]*\}}", sources)
    assert len(found) == 1, f"struct {cls.WGSL_NAME} (of doppler.ops.{module}) not once in wgsl/**/*.wgsl: {found}"
    assert _normalize(found[0]) == _normalize(wgsl(cls))
    assert len(pack(cls())) % 16 == 0


def test_there_are_uniforms_to_check():
    assert list(_uniform_classes())
