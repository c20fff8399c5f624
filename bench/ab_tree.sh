#!/usr/bin/env bash
# A copy of the app at a git revision, with an optional patch, for an A/B on the GPU machine (bench/h100_ab.sh):
#   bench/ab_tree.sh NAME [REV [PATCH]]      (REV: default HEAD; PATCH: a `git diff` to apply on top)
# Makes ab/NAME: REV's tracked files less tests/ and bench/results/ (they do not run there and would crowd the 64 MiB a
# device call carries) and a link to the project's node_modules. ab/ is git-ignored: carry it ("carry": ["ab", ...]).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
name=$1 rev=${2:-HEAD} patch=${3:-}
dir=ab/$name
rm -rf "$dir" && mkdir -p "$dir"
git archive "$rev" | tar -x -C "$dir" --exclude=tests --exclude=bench/results
[ -z "$patch" ] || git apply --directory="$dir" "$patch"
ln -s ../../node_modules "$dir/node_modules"
echo "$dir: $(git rev-parse --short "$rev")${patch:+ + $patch} ($(du -sh "$dir" | cut -f1))"
