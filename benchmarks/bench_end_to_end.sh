#!/usr/bin/env bash
# End-to-end wall time of one experiment: an older prada (a git ref, checked out in a temporary
# worktree, run with its own config file) against this checkout's fast path, one after the other
# on the same machine. Prints both times and the ratio (not a test; ~1 h on 2 cores).
#
#   bash benchmarks/bench_end_to_end.sh [OLD_REF] [DATA_DIR] [OUT_DIR]
#
# OLD_REF defaults to 57c9832 (main before the fast path); DATA_DIR to ../shared/data; OUT_DIR to
# runs/e2e. OLD_SECONDS=N (environment) skips the old run and compares with N seconds measured
# before on the same machine (the old run alone takes ~27 min). The experiment: configs/experiments/multiarith_tuned.yaml with seeds=[0] and full test
# splits (eval.max_examples=null): FT-CoT and PRADA trained 50 steps, each evaluated on MultiArith,
# AddSub, SingleEq and SVAMP, features, report. The new run overrides the config's fp32 settings
# with the defaults (train.mixed_precision, eval.dtype, train.compile: auto; eval.batch_size 128).
set -euo pipefail
old_ref=${1:-57c9832}
data=$(realpath "${2:-../shared/data}")
out=$(realpath -m "${3:-runs/e2e}")
py=$(realpath -s "${PYTHON:-.venv/bin/python}")  # -s: a venv python is a symlink
cfg=configs/experiments/multiarith_tuned.yaml
common=("seeds=[0]" "eval.max_examples=null" "data.data_dir=$data")

if [ -n "${OLD_SECONDS:-}" ]; then
    old_s=$OLD_SECONDS
    echo "old ($old_ref): ${old_s} s (OLD_SECONDS: measured before, not run now)"
else
    worktree=$(mktemp -d)/prada-$old_ref
    git worktree add --quiet --detach "$worktree" "$old_ref"
    trap 'git worktree remove --force "$worktree"' EXIT
    start=$(date +%s)
    (cd "$worktree" && PYTHONPATH="$worktree/src" "$py" -m prada.cli run "$cfg" "${common[@]}" "output_dir=$out/old")
    old_s=$(( $(date +%s) - start ))
    echo "old ($old_ref): ${old_s} s"
fi

# RUNS=N (environment, default 1) repeats the new run N times, each in a fresh folder, and
# reports the median: this VM's speed moves by ±10 % from one run to the next.
runs=${RUNS:-1}
times=()
for i in $(seq 1 "$runs"); do
    dir="$out/new"
    [ "$runs" -gt 1 ] && dir="$out/new$i"
    start=$(date +%s)
    PYTHONPATH="$(pwd)/src" "$py" -m prada.cli run "$cfg" "${common[@]}" "output_dir=$dir" \
        train.mixed_precision=auto eval.dtype=auto train.compile=auto eval.batch_size=128
    times+=($(( $(date +%s) - start )))
    echo "new run $i/$runs: ${times[-1]} s"
done
new_s=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
echo "old ($old_ref): ${old_s} s; new ($(git rev-parse --short HEAD)): ${new_s} s (median of ${times[*]}); ratio $(python3 -c "print(f'{$old_s / $new_s:.2f}x')")"
