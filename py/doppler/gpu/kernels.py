"""Kernel registry: WGSL files in `wgsl/`, preprocessed per backend, specialized by override constants, compiled once.

A kernel is (file, entry point, overrides). Its label, `matmul.wgsl:main{TILE_M=64}`, names it in every error.
Includes: a line `#include "lib/name.wgsl"` is replaced by that file (relative to the kernel folder), once per
kernel however often it is named, so kernels of one family share their core; WGSL declarations are order-free, so
an included file may use what its includer declares. Compiler line numbers count the expanded text.
Specialized kernels: a file with a line `#specialize` gets its overrides written in as consts, each set its own
module, for what only const expressions may size (WGSL sizes an array nested in a workgroup array by a const
expression, not an override). The label is the same.
Per-backend preprocessing: Chrome requires `enable subgroups;` before subgroup builtins while naga rejects the
directive (it enables them from the device feature), so the native backend drops it. Files that enable a feature
the device lacks are refused with the name of the feature, before the compiler sees them.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import GpuError

_INCLUDE = re.compile(r'^#include "([\w./-]+\.wgsl)"[ \t]*$', re.MULTILINE)
_SPECIALIZE = re.compile(r"^#specialize[ \t]*$\n?", re.MULTILINE)
_OVERRIDE = re.compile(r"^override\s+(\w+)\s*:\s*(\w+)\s*=\s*([^;]+);", re.MULTILINE)
_ENABLE = re.compile(r"^\s*enable\s+([\w\-, ]+);\s*$", re.MULTILINE)
# WGSL extension name -> the device feature it needs.
_EXTENSION_FEATURES = {
    "f16": "shader-f16",
    "subgroups": "subgroups",
    "chromium_experimental_subgroup_matrix": "chromium-experimental-subgroup-matrix",
}
# Directives naga does not accept (it enables these from the device features alone).
_NATIVE_IMPLICIT = {"subgroups"}


@dataclass(frozen=True)
class Kernel:
    label: str
    name: str
    entry: str
    pipeline: object
    overrides: dict


def kernel_label(name: str, entry: str, overrides: dict) -> str:
    consts = ",".join(f"{k}={overrides[k]}" for k in sorted(overrides))
    return f"{name}.wgsl:{entry}" + (f"{{{consts}}}" if consts else "")


def expand_includes(code: str, name: str, read) -> str:
    """`code` with every `#include "path"` replaced by `read(path)` (expanded too), each path pasted once."""
    seen: set[str] = set()

    def expand(text: str, within: str) -> str:
        def paste(m: re.Match) -> str:
            path = m[1]
            if path in seen:
                return ""
            seen.add(path)
            try:
                included = read(path)
            except OSError:
                raise GpuError(f"kernel {within}: cannot read its #include \"{path}\" (paths are relative to the "
                               f"kernel folder)") from None
            return expand(included, path)

        return _INCLUDE.sub(paste, text)

    return expand(code, f"{name}.wgsl")


def with_constants(code: str, constants: dict, label: str) -> str:
    """`code` with each `override NAME: T = default;` made `const NAME: T = value;` (the value in `constants`, else
    the default); a constant the module does not declare is an error, as in createComputePipeline."""
    unknown = set(constants) - {m[0] for m in _OVERRIDE.findall(code)}
    if unknown:
        raise GpuError(f"kernel {label}: constants the module does not declare: {sorted(unknown)}")

    def const(m: re.Match) -> str:
        name, type_, default = m[1], m[2], m[3]
        if name not in constants:
            return f"const {name}: {type_} = {default};"
        value = constants[name]
        text = ("true" if value else "false") if type_ == "bool" else repr(value)
        return f"const {name}: {type_} = {text};"

    return _OVERRIDE.sub(const, code)


def preprocess(code: str, name: str, backend: str, features: frozenset[str]) -> str:
    """The source as this backend must see it; refuses extensions the device lacks."""

    def directive(m: re.Match) -> str:
        keep = []
        for ext in (e.strip() for e in m[1].split(",")):
            feature = _EXTENSION_FEATURES.get(ext)
            if feature is not None and feature not in features:
                raise GpuError(
                    f"kernel {name}.wgsl needs the device feature '{feature}' (enable {ext};), which this GPU does not "
                    f"offer: rules must pick another variant here."
                )
            if not (backend == "native" and ext in _NATIVE_IMPLICIT):
                keep.append(ext)
        return f"enable {', '.join(keep)};" if keep else ""

    return _ENABLE.sub(directive, code)


class KernelRegistry:
    """Kernels by label, each compiled once: a kernel asked for while its compile runs waits for that compile."""

    def __init__(self, backend, source_dir: Path):
        self.backend = backend
        self.source_dir = Path(source_dir)
        self._sources: dict[str, str] = {}
        self._specialized: set[str] = set()  # names of the files with `#specialize`
        self._kernels: dict[str, Kernel] = {}
        self._compiling: dict[str, asyncio.Future] = {}

    def source(self, name: str) -> str:
        if name not in self._sources:
            path = self.source_dir / f"{name}.wgsl"
            if not path.is_file():
                known = sorted(p.stem for p in self.source_dir.glob("*.wgsl"))
                raise GpuError(f"no kernel file {path}; known kernels: {', '.join(known)}")
            code = expand_includes(path.read_text(), name, lambda p: (self.source_dir / p).read_text())
            code, marks = _SPECIALIZE.subn("", code)
            if marks:
                self._specialized.add(name)
            self._sources[name] = preprocess(code, name, self.backend.name, self.backend.caps.features)
        return self._sources[name]

    async def get(self, name: str, entry: str = "main", overrides: dict | None = None) -> Kernel:
        overrides = dict(overrides or {})
        label = kernel_label(name, entry, overrides)
        kernel = self._kernels.get(label)
        if kernel is not None:
            return kernel
        compiling = self._compiling.get(label)
        if compiling is None:
            compiling = self._compiling[label] = asyncio.ensure_future(self._compile(name, entry, overrides, label))
        return await asyncio.shield(compiling)  # one caller cancelled leaves the compile to the others

    async def _compile(self, name: str, entry: str, overrides: dict, label: str) -> Kernel:
        try:
            code, constants = self.source(name), overrides
            if name in self._specialized:
                code, constants = with_constants(code, overrides, label), {}
            pipeline = await self.backend.create_pipeline(code, entry, constants, label)
            self._kernels[label] = Kernel(label, name, entry, pipeline, overrides)
            return self._kernels[label]
        finally:
            del self._compiling[label]  # a failed compile is tried again by the next caller

    def requests(self) -> list[tuple[str, str, dict]]:
        """(name, entry, overrides) of every kernel compiled so far."""
        return [(k.name, k.entry, k.overrides) for k in self._kernels.values()]

    async def compile_all(self, requests: list[tuple[str, str, dict]]) -> list[str]:
        """Compile these kernels (`requests()` of another registry) all at once, so the device may compile them in
        parallel; returns the errors of those that failed (each names its kernel; asking for one again retries)."""
        results = await asyncio.gather(*(self.get(*r) for r in requests), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        for error in failed:
            if not isinstance(error, GpuError):
                raise error
        return [str(e) for e in failed]

    def __len__(self) -> int:
        return len(self._kernels)
