#!/usr/bin/env bash
# Pipeline A/B on the GPU machine: each RUN is NAME=TREE[,f16], bench/h100_app.sh's 20-step and LCM pipeline (JOB
# bench_pipeline) in TREE, a copy of the app made here with bench/ab_tree.sh (ab/NAME) or . for the working tree, with
# $CHROME_F16_FLAGS where ",f16" (the tensor-core path). Second device call, as bench/h100_app.sh's, carrying
# .device-chrome/b, node_modules and ab:
#   . .device-chrome/b/setup.sh && bench/h100_ab.sh old1=ab/base,f16 new1=.,f16 old2=ab/base,f16 new2=.,f16
# Runs go in the order given (alternate them: machines drift); the first converts the model, the rest reuse it. Each
# run's app.json lands in $OUT/NAME/, and everything the runs print goes to $OUT/ab.log as it comes, so a call cut
# short by its time limit still brings back what it measured; the summary lines are printed at the end.
set -uo pipefail
out=$(realpath "${OUT:-.}")
log=$out/ab.log
for run in "$@"; do
  name=${run%%=*} tree=${run#*=} flags=()
  [[ $tree == *,f16 ]] && tree=${tree%,f16} && read -ra flags <<< "$CHROME_F16_FLAGS"
  mkdir -p "$out/$name"
  echo "== $name: $tree${flags[*]:+ with \$CHROME_F16_FLAGS}" >> "$log"
  (cd "$tree" && OUT="$out/$name" JOB=bench_pipeline bench/h100_app.sh "${flags[@]}") >> "$log" 2>&1 \
    || echo "bench failed: $name (above)" >> "$log"
done
grep -E "^(== |warm:|lcmWarm:|bench failed|no result)" "$log"
