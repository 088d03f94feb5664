#!/usr/bin/env bash
# Runs configs/experiment.yaml once per seed (default: 1 2 3), each in runs/experiment-seed-N,
# and copies each run's result.json to experiments/results/seed-N.json. Resumable: rerun the
# same command after an interruption and every finished step is skipped. Another config
# (MI_EXPERIMENT_CONFIG=configs/NAME.yaml) runs in runs/NAME-seed-N and its results are
# experiments/results/NAME-seed-N.json.
#   scripts/experiment.sh [SEED...]            extra mi-run flags: MI_RUN_FLAGS="--set k=v ..."
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${MI_BIN_DIR:-.build/release}"
config="${MI_EXPERIMENT_CONFIG:-configs/experiment.yaml}"
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(1 2 3)
mkdir -p experiments/results
name=$(basename "$config" .yaml)
prefix=""
[ "$name" = experiment ] || prefix="$name-"
for seed in "${seeds[@]}"; do
    run="runs/$name-seed-$seed"
    echo "experiment: seed $seed in $run" >&2
    # shellcheck disable=SC2086
    "$bin/mi-run" --config "$config" --run-dir "$run" --set seed="$seed" ${MI_RUN_FLAGS:-}
    result="experiments/results/${prefix}seed-$seed"
    cp "$run/result.json" "$result.json.partial"
    mv "$result.json.partial" "$result.json"
    cp "$run/summary.md" "$result.summary.md.partial"
    mv "$result.summary.md.partial" "$result.summary.md"
done
