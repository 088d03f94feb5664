#!/usr/bin/env bash
# One round of Montessori-Instruct as a shell pipeline of the project's stages: the same loop
# mi-run runs from a config, written out so each stage can be read, changed or replaced. Every
# intermediate file goes under RUN_DIR; a step whose output exists is skipped (unlike mi-run, this
# does not notice changed settings or inputs). Sizes are small by default (minutes on 2 cores).
#
#   scripts/montessori-loop.sh TEACHER.gguf RUN_DIR [SEEDS] [REFERENCE]
#
# Environment: PROBE_PROMPTS, SAMPLES, TRAIN_PROMPTS, WARMUP_PROMPTS, MAX_TOKENS, SEED.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${MI_BIN_DIR:-$here/.build/release}"
teacher="$1"; run="$2"
seeds="${3:-$here/data/seeds.jsonl}"; reference="${4:-$here/data/reference.jsonl}"
probe_prompts="${PROBE_PROMPTS:-8}"; samples="${SAMPLES:-4}"; train_prompts="${TRAIN_PROMPTS:-12}"
warmup_prompts="${WARMUP_PROMPTS:-6}"; max_tokens="${MAX_TOKENS:-96}"; seed="${SEED:-1}"
mkdir -p "$run"
step() { echo "== $1" >&2; }
done_() { [ -e "$1" ]; }

# Reference split: the first two thirds probe the student, the rest is held out for evaluation.
if ! done_ "$run/reference-probe.jsonl"; then
    n=$(grep -c . "$reference"); k=$((n * 2 / 3))
    head -n "$k" "$reference" > "$run/reference-probe.jsonl.tmp"; tail -n +"$((k + 1))" "$reference" > "$run/heldout.jsonl"
    mv "$run/reference-probe.jsonl.tmp" "$run/reference-probe.jsonl"
fi

step "warm up the student on teacher data"
done_ "$run/warmup.jsonl.gz" || { "$bin/mi-generate" --quiet --teacher "$teacher" --seeds "$seeds" --prompts "$warmup_prompts" --samples 2 \
    --max-tokens "$max_tokens" --seed $((seed + 100)) \
  | "$bin/mi-dedupe" --quiet --against "$seeds" \
  | "$bin/mi-respond" --quiet --teacher "$teacher" --max-tokens "$max_tokens" --seed $((seed + 100)) -o "$run/warmup.jsonl.gz"; }
done_ "$run/student-warm" || "$bin/mi-sft" --quiet --model "$teacher" --data "$run/warmup.jsonl.gz" --out "$run/student-warm" \
    --lr 5e-6 --batch-size 2 --save-optimizer --max-length 384 --metrics "$run/warmup-metrics.jsonl"

step "generate, dedupe and answer the probing set"
done_ "$run/probe-set.jsonl.gz" || { "$bin/mi-generate" --quiet --teacher "$teacher" --seeds "$seeds" --prompts "$probe_prompts" \
    --samples "$samples" --max-tokens "$max_tokens" --seed "$seed" \
  | "$bin/mi-dedupe" --quiet --against "$seeds" \
  | "$bin/mi-respond" --quiet --teacher "$teacher" --max-tokens "$max_tokens" --seed "$seed" -o "$run/probe-set.jsonl.gz"; }

step "probe local data influence"
done_ "$run/scored.jsonl.gz" || "$bin/mi-probe" --quiet --student "$run/student-warm" --reference "$run/reference-probe.jsonl" \
    --lr 5e-6 "$run/probe-set.jsonl.gz" -o "$run/scored.jsonl.gz"

step "pair and DPO-update the teacher"
done_ "$run/pairs.jsonl.gz" || "$bin/mi-pair" "$run/scored.jsonl.gz" -o "$run/pairs.jsonl.gz"
if [ "$(zcat "$run/pairs.jsonl.gz" | wc -l)" -eq 0 ]; then
    echo "no preference pairs: the teacher stays as it is" >&2
    done_ "$run/teacher-dpo" || ln -s "$(cd "$(dirname "$teacher")" && pwd)/$(basename "$teacher")" "$run/teacher-dpo"
else
    done_ "$run/teacher-dpo" || "$bin/mi-dpo" --quiet --model "$teacher" --pairs "$run/pairs.jsonl.gz" --out "$run/teacher-dpo" \
        --beta 0.1 --lr 1e-6 --batch-size 2 --max-length 512 --metrics "$run/dpo-metrics.jsonl"
fi

step "training sets from the updated and the original teacher"
for who in montessori baseline; do
    t="$run/teacher-dpo"; [ "$who" = baseline ] && t="$teacher"
    done_ "$run/train-$who.jsonl.gz" || { "$bin/mi-generate" --quiet --teacher "$t" --seeds "$seeds" --prompts "$train_prompts" \
        --samples 2 --max-tokens "$max_tokens" --seed $((seed + 200)) \
      | "$bin/mi-dedupe" --quiet --against "$seeds" \
      | "$bin/mi-respond" --quiet --teacher "$t" --max-tokens "$max_tokens" --seed $((seed + 200)) -o "$run/train-$who.jsonl.gz"; }
done
# The same amount of data for both students.
n=$(( $(zcat "$run/train-montessori.jsonl.gz" | wc -l) < $(zcat "$run/train-baseline.jsonl.gz" | wc -l) \
      ? $(zcat "$run/train-montessori.jsonl.gz" | wc -l) : $(zcat "$run/train-baseline.jsonl.gz" | wc -l) ))

step "train both students ($n records each) and evaluate on the held-out split"
for who in montessori baseline; do
    done_ "$run/student-$who" || { zcat "$run/train-$who.jsonl.gz" | head -n "$n" > "$run/train-$who-$n.jsonl"
        "$bin/mi-sft" --quiet --model "$run/student-warm" --data "$run/train-$who-$n.jsonl" --out "$run/student-$who" \
            --lr 5e-6 --batch-size 2 --max-length 384 --metrics "$run/sft-$who-metrics.jsonl"; }
done
done_ "$run/eval.jsonl" || "$bin/mi-eval" --model "$run/student-montessori" --against "$run/student-baseline" \
    --data "$run/heldout.jsonl" -o "$run/eval.jsonl" 2> "$run/eval-summary.txt"

# Summary: records per step and the held-out comparison (mi-run prints the full table).
count() { if [ -e "$1" ]; then zcat -f "$1" | grep -c . || true; else echo 0; fi; }
{
    echo "probing candidates: $(count "$run/probe-set.jsonl.gz"), scored: $(count "$run/scored.jsonl.gz"), pairs: $(count "$run/pairs.jsonl.gz")"
    echo "training records per student: $n"
    cat "$run/eval-summary.txt"
} >&2
