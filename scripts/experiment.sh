#!/usr/bin/env bash
# Runs configs/experiment.yaml once per seed (default: 1 2 3), each in runs/experiment-seed-N,
# and copies each run's result.json to experiments/results/seed-N.json. Resumable: rerun the
# same command after an interruption and every finished step is skipped.
#   scripts/experiment.sh [SEED...]            extra mi-run flags: MI_RUN_FLAGS="--set k=v ..."
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${MI_BIN_DIR:-.build/release}"
config="${MI_EXPERIMENT_CONFIG:-configs/experiment.yaml}"
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(1 2 3)
mkdir -p experiments/results
for seed in "${seeds[@]}"; do
    run="runs/experiment-seed-$seed"
    echo "experiment: seed $seed in $run" >&2
    # shellcheck disable=SC2086
    "$bin/mi-run" --config "$config" --run-dir "$run" --set seed="$seed" ${MI_RUN_FLAGS:-}
    cp "$run/result.json" "experiments/results/seed-$seed.json.partial"
    mv "experiments/results/seed-$seed.json.partial" "experiments/results/seed-$seed.json"
    cp "$run/summary.md" "experiments/results/seed-$seed.summary.md"
done
