"""Rules: the repository's kernel rules, each matcher, first match wins, and file/query errors."""

import json

import pytest

from doppler.rules import RuleBook, RuleError

SUBGROUP_MATRIX = {"subgroupMatrixConfigs": [], "subgroupMinSize": 32, "subgroupMaxSize": 32}
CHROME_F16 = {"backend": "browser", "vendor": "nvidia", "features": ["shader-f16", "subgroups", "timestamp-query"],
              "limits": {"maxStorageBufferBindingSize": 2**31}, **SUBGROUP_MATRIX}
SWIFTSHADER = {"backend": "browser", "vendor": "google", "features": [], "limits": {}, **SUBGROUP_MATRIX,
               "subgroupMinSize": 4, "subgroupMaxSize": 64}
# Chromium on an NVIDIA driver: int8 configs only by default; f16 ones with shader-f16 ($CHROME_F16_FLAGS).
NVIDIA_INT8 = ["i8>i32 16x16x32", "u8>u32 16x8x32"]
NVIDIA_F16 = NVIDIA_INT8 + ["f16>f16 16x16x16", "f16>f32 16x16x16", "f16>f32 16x8x16"]


@pytest.fixture(scope="module")
def book(rules_dir):
    return RuleBook.load(rules_dir)


@pytest.mark.parametrize("device, stored, math, storage, subgroups", [
    (CHROME_F16, "f16", "f16", "f16", True),
    (CHROME_F16, "f32", "f16", "f32", True),
    (SWIFTSHADER, "f16", "f32", "f16-packed", False),
    (SWIFTSHADER, "f32", "f32", "f32", False),
    (SWIFTSHADER, "int8", "f32", "int8-packed", False),
])
def test_kernel_dtype_paths_follow_device_features(book, device, stored, math, storage, subgroups):
    context = {**device, "storedDtype": stored}
    assert book.select_rule_value("kernels", "mathDtype", context) == math
    assert book.select_rule_value("kernels", "weightStorage", context) == storage
    assert book.select_rule_value("kernels", "subgroups", context) is subgroups
    assert book.select_rule_value("kernels", "tensor_cores", context) is False


@pytest.mark.parametrize("features, configs, sizes, tensor_cores", [
    (["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix"], NVIDIA_F16, (32, 32), True),
    (["subgroups", "chromium-experimental-subgroup-matrix"], NVIDIA_INT8, (32, 32), False),  # driver < 615.71
    (["shader-f16", "subgroups", "chromium-experimental-subgroup-matrix"], NVIDIA_F16, (16, 64), False),  # not 32
    (["shader-f16", "chromium-experimental-subgroup-matrix"], NVIDIA_F16, (32, 32), False),  # no subgroup_id
    (["shader-f16"], [], (32, 32), False),
])
def test_tensor_cores_need_f16_subgroup_matrices_of_32_invocations(book, features, configs, sizes, tensor_cores):
    context = {**CHROME_F16, "features": features, "subgroupMatrixConfigs": configs,
               "subgroupMinSize": sizes[0], "subgroupMaxSize": sizes[1]}
    assert book.select_rule_value("kernels", "tensor_cores", context) is tensor_cores


def write_rules(folder, name, rules, domain="test"):
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"domain": domain, "rules": rules}))
    return path


MATCHER_RULES = {
    "pick": [
        {"when": {"backend": {"eq": "native"}}, "value": "eq"},
        {"when": {"vendor": {"neq": "apple"}, "size": {"gt": 100}}, "value": "neq+gt"},
        {"when": {"size": {"gte": 50, "lt": 60}}, "value": "gte+lt"},
        {"when": {"limits.maxBytes": {"lte": 1024}}, "value": "lte (dotted)"},
        {"when": {"vendor": {"in": ["intel", "amd"]}}, "value": "in"},
        {"when": {"features": {"contains": "shader-f16"}}, "value": "contains"},
        {"when": {"features": {"containsAll": ["subgroups", "timestamp-query"]}}, "value": "containsAll"},
        {"default": "default"},
    ],
}
BASE = {"backend": "browser", "vendor": "apple", "size": 10, "limits": {"maxBytes": 4096}, "features": []}


@pytest.mark.parametrize("change, expected", [
    ({"backend": "native"}, "eq"),
    ({"vendor": "nvidia", "size": 101}, "neq+gt"),
    ({"vendor": "nvidia", "size": 100}, "default"),  # gt is strict
    ({"size": 100}, "default"),  # neq fails: every condition must hold
    ({"size": 50}, "gte+lt"),
    ({"size": 60}, "default"),  # lt is strict
    ({"limits": {"maxBytes": 1024}}, "lte (dotted)"),
    ({"vendor": "amd"}, "in"),
    ({"features": ["subgroups", "shader-f16"]}, "contains"),
    ({"features": ["timestamp-query", "subgroups"]}, "containsAll"),
    ({"features": ["subgroups"]}, "default"),  # containsAll needs every item
    ({}, "default"),
])
def test_each_matcher(tmp_path, change, expected):
    write_rules(tmp_path, "m.rules.json", MATCHER_RULES)
    assert RuleBook.load(tmp_path).select_rule_value("test", "pick", {**BASE, **change}) == expected


def test_first_matching_rule_wins(tmp_path):
    write_rules(tmp_path, "a.rules.json", {"k": [{"when": {"x": {"gt": 1}}, "value": "first"},
                                                 {"when": {"x": {"gt": 0}}, "value": "second"},
                                                 {"default": "none"}]})
    book = RuleBook.load(tmp_path)
    assert [book.select_rule_value("test", "k", {"x": x}) for x in (2, 1, 0)] == ["first", "second", "none"]


def test_files_in_subfolders_share_a_domain(tmp_path):
    write_rules(tmp_path, "a/one.rules.json", {"k1": [{"default": 1}]})
    write_rules(tmp_path, "b/c/two.rules.json", {"k2": [{"default": 2}]})
    (tmp_path / "notes.json").write_text("not a rules file, ignored")
    book = RuleBook.load(tmp_path)
    assert (book.select_rule_value("test", "k1", {}), book.select_rule_value("test", "k2", {})) == (1, 2)


@pytest.mark.parametrize("rules, expected", [
    ({"k": [{"when": {"x": {"like": 1}}, "value": 1}, {"default": 0}]},
     "test.k[0]: when.x: unknown matcher 'like'; known: eq, neq, gt, gte, lt, lte, in, contains, "
     "containsAll"),
    ({"k": [{"when": {"x": {"eq": 1}}, "value": 1}]},
     'test.k[0]: the last rule must be {"default": value}'),
    ({"k": [{"default": 0}, {"when": {"x": {"eq": 1}}, "value": 1}]},
     'test.k[1]: the last rule must be {"default": value}'),
    ({"k": [{"default": 0}, {"default": 1}]}, "test.k[0]: only the last rule may be a default"),
    ({"k": []}, 'test.k: expected a list of rules ending in {"default": value}'),
    ({"k": [{"when": {"x": {"gt": "big"}}, "value": 1}, {"default": 0}]},
     'test.k[0]: when.x.gt: got "big"; expected a number'),
    ({"k": [{"when": {"x": {"in": "ab"}}, "value": 1}, {"default": 0}]}, 'when.x.in: got "ab"; expected an array'),
    ({"k": [{"when": {"x": {"contains": ["a"]}}, "value": 1}, {"default": 0}]},
     "when.x.contains: got [\"a\"]; expected a string, number, boolean or null"),
    ({"k": [{"when": {"x": {}}, "value": 1}, {"default": 0}]}, "test.k[0]: when.x: expected an object of matchers"),
    ({"k": [{"when": {}, "value": 1}, {"default": 0}]}, "test.k[0]: when: expected an object of context keys"),
    ({"k": [{"when": {"x": {"eq": 1}}}, {"default": 0}]},
     "test.k[0]: got keys ['when']; expected when, value (and optionally why)"),
    ({"k": [{"when": {"x": {"eq": 1}}, "value": 1, "because": ""}, {"default": 0}]},
     "test.k[0]: got keys ['because', 'value', 'when']"),
    ({}, "rules: expected an object of rule sets by key"),
])
def test_bad_rule_file_names_file_and_rule(tmp_path, rules, expected):
    path = write_rules(tmp_path, "bad.rules.json", rules)
    with pytest.raises(RuleError) as caught:
        RuleBook.load(tmp_path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


@pytest.mark.parametrize("text, expected", [
    ("{", "not a readable JSON file: Expecting property name"),
    ('{"rules": {}}', "expected an object with keys domain, rules"),
    ('{"domain": "", "rules": {"k": [{"default": 0}]}}', 'domain: got ""; expected a non-empty string'),
])
def test_malformed_rule_file(tmp_path, text, expected):
    path = tmp_path / "x.rules.json"
    path.write_text(text)
    with pytest.raises(RuleError, match="^" + str(path).replace(".", r"\.") + ": ") as caught:
        RuleBook.load(tmp_path)
    assert expected in str(caught.value)


def test_a_key_is_defined_once(tmp_path):
    first = write_rules(tmp_path, "a.rules.json", {"k": [{"default": 0}]})
    second = write_rules(tmp_path, "b.rules.json", {"k": [{"default": 1}]})
    with pytest.raises(RuleError, match=f"^{second}: test.k is already defined in {first}$"):
        RuleBook.load(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(RuleError, match=r"no \*\.rules\.json files here; pass the repository's rules/ folder"):
        RuleBook.load(tmp_path)


def test_unknown_domain_key_lists_known(book):
    with pytest.raises(RuleError, match=r"^no rules for kernels\.attention; known: "
                                        r"kernels\.gemm_split_wave_tensor_cores, kernels\.gemm_wave, "
                                        r"kernels\.gemm_wave_tensor_cores, kernels\.mathDtype, kernels\.subgroups, "
                                        r"kernels\.tensor_cores, kernels\.weightStorage$"):
        book.select_rule_value("kernels", "attention", CHROME_F16)


def test_missing_context_key_is_named(book, rules_dir):
    with pytest.raises(RuleError) as caught:
        book.select_rule_value("kernels", "weightStorage", CHROME_F16)
    assert str(caught.value) == (f"{rules_dir / 'kernels' / 'dtype.rules.json'}: kernels.weightStorage[0]: the "
                                 "context has no 'storedDtype' (given: backend, features, limits, "
                                 "subgroupMatrixConfigs, subgroupMaxSize, subgroupMinSize, vendor); "
                                 "rules/README.md lists the keys each domain needs")


def test_context_value_of_wrong_kind(book):
    with pytest.raises(RuleError, match=r'kernels\.mathDtype\[0\]: context features is "shader-f16"; contains '
                                        r"needs an array$"):
        book.select_rule_value("kernels", "mathDtype", {"features": "shader-f16"})


def test_device_capabilities_are_a_rule_context(rules_dir):
    from doppler.gpu.caps import Capabilities
    from doppler.rules import RuleBook

    caps = Capabilities("browser", "NVIDIA", "hopper", "H100", frozenset({"subgroups"}),
                        {"maxStorageBufferBindingSize": 2**31})
    book = RuleBook.load(rules_dir)
    assert book.select_rule_value("kernels", "mathDtype", caps.context()) == "f32"
    assert book.select_rule_value("kernels", "weightStorage", {**caps.context(), "storedDtype": "f16"}) == "f16-packed"
    assert book.select_rule_value("kernels", "subgroups", caps.context()) is True
    assert book.select_rule_value("kernels", "gemm_wave", caps.context()) == 0  # not a measured device
    for hopper in ("NVIDIA H100 80GB HBM3", "NVIDIA H200"):  # one chip (132 SMs), as Chromium names the two
        context = Capabilities("browser", "nvidia", "", hopper, frozenset(), {}).context()
        assert book.select_rule_value("kernels", "gemm_wave", context) == 396
        assert book.select_rule_value("kernels", "gemm_wave_tensor_cores", context) == 264
        assert book.select_rule_value("kernels", "gemm_split_wave_tensor_cores", context) == 132
    assert book.select_rule_value("kernels", "gemm_split_wave_tensor_cores", caps.context()) == 0
