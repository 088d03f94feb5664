#!/usr/bin/env bash
# Kills a small mi-run at random moments and checks that the reruns end with exactly the files of
# an uninterrupted run.
#   scripts/crash-test.sh [K]     K kills (default 10); MI_BIN_DIR: the tools (.build/release)
#                                 MI_CRASH_SEED: the seed of the kill times (default: random)
# 1. The loop on the tiny test checkpoint (tests/Fixtures/tiny-hf/smollm; mi-generate replaced by
#    a script that hands out fixed candidates) runs uninterrupted: run A, wall time T.
# 2. Run B starts from nothing (in the same directory, once A is moved away). First only mi-run
#    is killed while a tool it started runs: the immediate rerun must refuse (exit 75, the
#    directory is in use) and never write beside it. Then, K times, mi-run and every tool it
#    started (its process group) are killed with SIGKILL at a random moment in [0, T) after a
#    rerun starts. A last rerun finishes it.
# 3. Every file of run A (data, checkpoints, evaluation) must exist in run B with the same bytes;
#    only wall times may differ (the step ledger, the summary, the metrics' elapsed_s).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$(cd "${MI_BIN_DIR:-.build/release}" && pwd)
kills=${1:-10}
seed=${MI_CRASH_SEED:-$((RANDOM * 32768 + RANDOM))}
RANDOM=$seed
work=$(mktemp -d "${TMPDIR:-/tmp}/mi-crash-test.XXXXXX")
trap '[ -n "${MI_CRASH_KEEP:-}" ] || rm -rf "$work"' EXIT
log() { echo "crash-test: $*" >&2; }

# The fixed candidates, in mi-generate's record form: 4 prompts × 3.
python_free_candidates() {
    local p=0
    while IFS='|' read -r a b c; do
        local s=0
        for text in "$a" "$b" "$c"; do
            printf '{"id":"p%d-s%d","instruction":"%s","prompt":"Write a new task, number %d.","prompt_id":"p%d","raw":"<instruction>%s</instruction>"}\n' \
                "$p" "$s" "$text" "$p" "$p" "$text"
            s=$((s + 1))
        done
        p=$((p + 1))
    done <<'EOF'
Name three rivers in Africa.|Describe how a bicycle gear works.|Write a limerick about a sleepy cat.
List two uses of baking soda at home.|Explain why the sky looks blue at noon.|Suggest a title for a mystery novel set on a train.
Give an example of a prime number above fifty.|Summarise the plot of a fairy tale you know.|Translate good morning into French and Spanish.
Convert 30 degrees Celsius to Fahrenheit.|Recommend a board game for four players and say why.|What is the capital of Canada?
EOF
}
python_free_candidates > "$work/candidates.jsonl"
cat > "$work/fake-generate.sh" <<'EOF'
#!/bin/sh
# Stands in for mi-generate: writes the fixed candidates to the -o file, atomically.
out=""
while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
sleep "${MI_CRASH_GENERATE_SLEEP:-0}" # long enough, in the orphan check, to outlive a killed mi-run
gzip -c -n "$(dirname "$0")/candidates.jsonl" > "$out.partial" && mv "$out.partial" "$out"
EOF
chmod +x "$work/fake-generate.sh"
head -12 data/reference.jsonl > "$work/reference.jsonl"
cat > "$work/config.yaml" <<EOF
teacher: $root/Tests/Fixtures/tiny-hf/smollm
seeds: $root/data/seeds.jsonl
reference: reference.jsonl
heldout_fraction: 0.25
rounds: 1
seed: 3
commands:
  mi-generate: fake-generate.sh
sampling: {max_tokens: 6, batch_size: 4}
warmup:
  sft: {lr: 1e-3, batch_size: 2}
probing:
  probe: {lr: 1e-3}
dpo: {lr: 1e-3, batch_size: 2, beta: 0.2}
training:
  sft: {lr: 1e-3, batch_size: 2}
EOF

mi_run() { "$bin/mi-run" --config "$work/config.yaml" --run-dir "$1" --quiet; }

# Both runs use one path (run), since checkpoints name the model they started from by path.
start=$(date +%s%N)
mi_run "$work/run"
took_ms=$((($(date +%s%N) - start) / 1000000))
mv "$work/run" "$work/A"
log "uninterrupted run: ${took_ms} ms; $kills kills, seed $seed"

# mi-run killed alone, its tool left running (the warm-up's generate step, made to take 2 s): the
# rerun must refuse while the tool runs.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
# A child process of $1, from /proc (no procps needed).
child_of() {
    local stat found
    for stat in /proc/[0-9]*/stat; do
        found=$(awk -v p="$1" '$4 == p { print $1; exit }' "$stat" 2>/dev/null || true) # processes come and go
        if [ -n "$found" ]; then
            echo "$found"
            return 0
        fi
    done
}
MI_CRASH_GENERATE_SLEEP=2 setsid "$bin/mi-run" --config "$work/config.yaml" --run-dir "$work/run" --quiet 2>/dev/null &
pid=$!
orphan=""
for _ in $(seq 1 500); do
    orphan=$(child_of "$pid")
    [ -n "$orphan" ] && break
    sleep 0.01
done
[ -n "$orphan" ] || { log "FAIL: mi-run started no tool within 5 s"; exit 1; }
kill -KILL "$pid"
{ wait "$pid"; } 2>/dev/null || true
status=0
"$bin/mi-run" --config "$work/config.yaml" --run-dir "$work/run" --quiet 2>/dev/null || status=$?
if ! alive "$orphan"; then
    log "FAIL: the orphaned tool ended before the check (raise MI_CRASH_GENERATE_SLEEP)"
    exit 1
fi
if [ "$status" -ne 75 ]; then
    log "FAIL: a rerun beside a running tool of the killed mi-run exited $status, expected 75"
    exit 1
fi
while alive "$orphan"; do sleep 0.05; done
log "rerun beside the orphaned tool of a killed mi-run: exit 75, as it should"

times=()
for ((i = 1; i <= kills; i++)); do
    at=$((RANDOM * 32768 + RANDOM))
    at=$((at % (took_ms > 1 ? took_ms : 1)))
    times+=("$at")
    setsid "$bin/mi-run" --config "$work/config.yaml" --run-dir "$work/run" --quiet 2>/dev/null &
    pid=$!
    sleep "$(printf '%d.%03d' $((at / 1000)) $((at % 1000)))"
    kill -KILL -- "-$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
done
log "killed at (ms after start): ${times[*]}"

mi_run "$work/run"

# Every file of A in B with the same bytes (the ledger's timings and the summary excepted).
failed=0
checked=0
while IFS= read -r -d '' f; do
    rel=${f#"$work/A/"}
    case "$rel" in .mi-run/* | summary.md | report.html) continue ;; esac
    checked=$((checked + 1))
    if [[ "$rel" == *metrics.jsonl ]]; then
        # Training metrics carry each step's wall time (elapsed_s); everything else must agree.
        same() { cmp -s <(sed -E 's/,"elapsed_s":[-0-9.eE+]+//' "$1") <(sed -E 's/,"elapsed_s":[-0-9.eE+]+//' "$2"); }
    else
        same() { cmp -s "$1" "$2"; }
    fi
    if ! same "$f" "$work/run/$rel"; then
        log "FAIL: $rel differs from the uninterrupted run's"
        failed=1
    fi
done < <(find "$work/A" -type f -print0)
extra=$(cd "$work/run" && find . -type f \( -name '*.partial' -o -name '*.partial.settings' \) | head -5)
if [ -n "$extra" ]; then
    log "FAIL: leftovers in the finished run: $extra"
    failed=1
fi
[ "$failed" -eq 0 ] || exit 1
log "ok: $checked files byte-identical to the uninterrupted run after $kills kills"
