"""WGSL preprocessing per backend: Chrome needs `enable subgroups;`, naga rejects it; missing features are named."""

import pytest

from doppler.errors import GpuError
from doppler.gpu.kernels import expand_includes, kernel_label, preprocess

SRC = "enable f16;\nenable subgroups;\nfn main() {}\n"


def test_native_drops_the_subgroups_directive_browser_keeps_it():
    features = frozenset({"shader-f16", "subgroups"})
    assert preprocess(SRC, "k", "native", features) == "enable f16;\n\nfn main() {}\n"
    assert preprocess(SRC, "k", "browser", features) == SRC


@pytest.mark.parametrize("missing", ["shader-f16", "subgroups"])
def test_a_missing_feature_is_named_with_the_kernel(missing):
    features = frozenset({"shader-f16", "subgroups"} - {missing})
    with pytest.raises(GpuError, match=f"kernel k.wgsl needs the device feature '{missing}'"):
        preprocess(SRC, "k", "browser", features)


def test_labels_name_file_entry_and_sorted_overrides():
    assert kernel_label("matmul", "main", {"TN": 4, "TM": 8}) == "matmul.wgsl:main{TM=8,TN=4}"
    assert kernel_label("softmax", "rows", {}) == "softmax.wgsl:rows"


def test_includes_expand_nested_and_once():
    files = {"lib/a.wgsl": '#include "lib/b.wgsl"\nfn a() {}\n', "lib/b.wgsl": "fn b() {}\n"}
    code = '#include "lib/a.wgsl"\n#include "lib/b.wgsl"\nfn main() {}\n'
    assert expand_includes(code, "k", files.__getitem__) == "fn b() {}\n\nfn a() {}\n\n\nfn main() {}\n"


def test_a_missing_include_is_named_with_its_includer():
    def read(path):
        raise FileNotFoundError(path)

    with pytest.raises(GpuError, match='kernel k.wgsl: cannot read its #include "lib/gone.wgsl"'):
        expand_includes('#include "lib/gone.wgsl"\n', "k", read)


def test_every_kernel_file_expands():
    from doppler.serve import PROJECT_ROOT

    folder = PROJECT_ROOT / "wgsl"
    for path in folder.glob("*.wgsl"):
        code = expand_includes(path.read_text(), path.stem, lambda p: (folder / p).read_text())
        assert "#include" not in code
