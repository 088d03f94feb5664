#!/usr/bin/env bash
# Instructions and responses per minute with the default model, beside transformers' generate.
# Usage: bench/synthesis.sh [MODEL]   (PEER_PYTHON: a Python with torch and transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-${MI_CACHE_DIR:-$HOME/.cache/montessori-swift}/SmolLM2-135M-Instruct.Q4_1.gguf}"
python="${PEER_PYTHON:-python3}"
dir="${BENCH_DIR:-/tmp/mi-bench}"
mkdir -p "$dir"
prompts=16 samples=4 tokens=128 responses=32
t0=$(date +%s.%N)
env -u OPENBLAS_CORETYPE .build/release/mi-generate --quiet --teacher "$model" --seeds data/seeds.jsonl --prompts $prompts --samples $samples \
    --max-tokens $tokens -o "$dir/gen.jsonl"
t1=$(date +%s.%N)
head -$responses data/seeds.jsonl | env -u OPENBLAS_CORETYPE .build/release/mi-respond --quiet --teacher "$model" --max-tokens $tokens > "$dir/resp.jsonl"
t2=$(date +%s.%N)
peer=$("$python" bench/peer_synthesis.py --model "$model" --seeds data/seeds.jsonl --prompts $prompts --samples $samples \
    --max-tokens $tokens --responses $responses --response-tokens $tokens 2>/dev/null)
python3 - "$t0" "$t1" "$t2" "$peer" $((prompts * samples)) $responses <<'PY'
import json, sys
t0, t1, t2 = map(float, sys.argv[1:4]); p = json.loads(sys.argv[4]); n, r = int(sys.argv[5]), int(sys.argv[6])
g, s = n / (t1 - t0) * 60, r / (t2 - t1) * 60
print("| measure | montessori-swift | transformers generate | ratio |")
print("|---|---|---|---|")
print(f"| instruction samples per minute ({n} samples, ≤128 tokens, T=1.0, top-p 0.9) | {g:.0f} | {p['samples_per_min']:.0f} | {g / p['samples_per_min']:.2f}× |")
print(f"| responses per minute ({r} seed tasks, ≤128 tokens, T=0.6, top-p 0.9) | {s:.0f} | {p['responses_per_min']:.0f} | {s / p['responses_per_min']:.2f}× |")
PY
