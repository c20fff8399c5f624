"""Tint's SPIR-V for each kernel a page compiled, from Chromium's log, and what robustness added to it.

Run the page with Dawn's `dump_shaders` toggle (`bench/h100_app.sh --enable-dawn-features=...,dump_shaders`: Dawn
prints every module's WGSL and Tint's SPIR-V disassembly as console messages, which `--enable-logging=stderr` writes
to `chrome.log`), then:
    python3 bench/spirv_dump.py chrome.log [--out DIR]
One line a module: its WGSL's first line, and counts of what Tint's robustness transform emits (bench/RESULTS.md,
session 20): index clamps (GLSL UMin), subgroup-matrix loads and stores whose stride is computed (Tint checks a
matrix access at a computed offset by selecting a safe offset and stride: a constant stride becomes a select), and
loop counters (PreventInfiniteLoops: `all(idx == 0)` in a loop Tint cannot prove finite). --out writes each
module's disassembly to DIR/NN.spvasm.
"""
import argparse
import pathlib
import re

MESSAGE = re.compile(r':INFO:CONSOLE:\d+\] "(.*?)\n", source: ', re.S)
WGSL, SPIRV = "// Dumped WGSL:\n", "/* Dumped SPIRV disassembly */\n"
MATRIX_ACCESS = re.compile(r"OpCooperativeMatrix(?:Load|Store)KHR( %\S+)+")


def modules(log: str) -> list[tuple[str, str]]:
    """(WGSL, SPIR-V disassembly) of each module, in the order Dawn compiled them."""
    pairs, wgsl = [], None
    for text in (m + "\n" for m in MESSAGE.findall(log)):  # the pattern takes each message's last newline
        if text.startswith(WGSL):
            wgsl = text[len(WGSL):]
        elif text.startswith(SPIRV) and wgsl is not None:
            pairs.append((wgsl, text[len(SPIRV):]))
            wgsl = None
    return pairs


def robustness_counts(spirv: str) -> dict:
    strides = [m.group(0).split()[-1] for m in MATRIX_ACCESS.finditer(spirv)]
    return {"clamps": spirv.count(" UMin "),
            "matrix_accesses": len(strides),
            "computed_strides": sum(not s.startswith("%uint_") for s in strides),
            "loop_counters": len(re.findall(r"= OpAll ", spirv))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path)
    args = parser.parse_args()
    found = modules(args.log.read_text(errors="replace"))
    if not found:
        raise SystemExit(f"{args.log}: no dumped shaders (run Chromium with --enable-dawn-features=dump_shaders)")
    for i, (wgsl, spirv) in enumerate(found):
        counts = robustness_counts(spirv)
        print(f"{i:02d} {wgsl.splitlines()[0][:70]:70s} " + " ".join(f"{k} {v}" for k, v in counts.items()))
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / f"{i:02d}.spvasm").write_text(spirv)


if __name__ == "__main__":
    main()
