"""bench/spirv_dump.py, which reads Tint's SPIR-V out of Chromium's log (Dawn's dump_shaders) and counts what its
robustness transform added: index clamps, matrix accesses whose stride became a select, loop counters."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "spirv_dump.py"
SOURCE = '", source: http://127.0.0.1:1/bench.html (1)\n'

WGSL = "// A kernel\n@compute @workgroup_size(32) fn main() {}\n"
# Two clamps, a matrix load at a constant stride and one whose stride Tint selected, a loop counter.
SPIRV = """; SPIR-V
       %585 = OpExtInst %uint %146 UMin %574 %uint_2559
       %589 = OpExtInst %uint %146 UMin %588 %uint_2559
       %1336 = OpSelect %uint %1334 %uint_24 %uint_16
       %1339 = OpCooperativeMatrixLoadKHR %1340 %1337 %uint_0 %1336 NonPrivatePointer
       %1357 = OpCooperativeMatrixLoadKHR %1340 %1356 %uint_0 %uint_24 NonPrivatePointer
               OpCooperativeMatrixStoreKHR %30 %1400 %uint_0 %uint_20 NonPrivatePointer
        %700 = OpAll %bool %699
"""


def log(*messages: str) -> str:
    return "".join(f'[1129/031850.7:INFO:CONSOLE:0] "{m}{SOURCE}' for m in messages)


def run(tmp_path, text: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "chrome.log"
    path.write_text("[1129/031850.1:INFO:gpu_init.cc(1)] unrelated\n" + text)
    return subprocess.run([sys.executable, str(SCRIPT), str(path), *args], capture_output=True, text=True)


def test_counts_what_robustness_added_to_each_module(tmp_path):
    done = run(tmp_path, log("// Dumped WGSL:\n" + WGSL, "/* Dumped SPIRV disassembly */\n" + SPIRV,
                             "// Dumped WGSL:\n// Another\n", "/* Dumped SPIRV disassembly */\n; SPIR-V\n"),
               "--out", str(tmp_path / "spv"))
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("00 // A kernel")
    assert first.endswith("clamps 2 matrix_accesses 3 computed_strides 1 loop_counters 1")
    assert second.startswith("01 // Another") and second.endswith("clamps 0 matrix_accesses 0 computed_strides 0 "
                                                                    "loop_counters 0")
    assert (tmp_path / "spv" / "00.spvasm").read_text() == SPIRV


def test_a_log_without_dumps_names_the_toggle(tmp_path):
    done = run(tmp_path, log("an ordinary console message\n"))
    assert done.returncode != 0 and "dump_shaders" in done.stderr
