#!/usr/bin/env bash
# The model core beside PyTorch + transformers on the same model and machine, one after the
# other: prints the commands, the machine and a Markdown table (ratio > 1: montessori-swift faster).
# Usage: bench/model.sh [MODEL]   (PEER_PYTHON: a Python with torch and transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-${MI_CACHE_DIR:-$HOME/.cache/montessori-swift}/SmolLM2-135M-Instruct.Q4_1.gguf}"
python="${PEER_PYTHON:-python3}"
swift_cmd=(env -u OPENBLAS_CORETYPE .build/release/mi-bench --model "$model")
peer_cmd=("$python" bench/peer_torch.py --model "$model")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "commands: ${swift_cmd[*]}  |  ${peer_cmd[*]}"
swift_json="$("${swift_cmd[@]}")"
peer_json="$("${peer_cmd[@]}" 2>/dev/null)"
python3 - "$swift_json" "$peer_json" <<'PY'
import json, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
peak = s["sgemm_gflops"]
def row(label, key, unit, higher_better, fmt="{:.2f}"):
    a, b = s.get(key), p.get(key)
    ratio = "" if a is None or b is None else f"{(a / b if higher_better else b / a):.2f}×"
    show = lambda v: "—" if v is None else fmt.format(v)
    print(f"| {label} | {show(a)} {unit} | {show(b)} {unit} | {ratio} |")
print(f"\nOpenBLAS core {s['openblas_core']}, sgemm peak {peak:.0f} GFLOP/s (2048³, {s['threads']} threads); "
      f"PyTorch {p['torch_version']}, transformers {p['transformers_version']}, {p['threads']} threads\n")
print("| measure | montessori-swift | PyTorch | ratio |")
print("|---|---|---|---|")
row("forward 8×256 tokens", "forward_s", "s", False)
row("forward throughput", "forward_tokens_per_s", "tok/s", True, "{:.0f}")
print(f"| forward as a fraction of the sgemm peak | {s['forward_gflops'] / peak:.2f} | {p['forward_gflops'] / peak:.2f} | |")
row("decode, batch 1", "decode_b1_tokens_per_s", "tok/s", True, "{:.1f}")
row("decode, batch 16", "decode_b16_tokens_per_s", "tok/s", True, "{:.1f}")
row("SFT step, 256 tokens (fwd+bwd+AdamW)", "sft_step_s", "s", False)
print(f"| SFT step as a fraction of the sgemm peak | {s['sft_step_gflops'] / peak:.2f} | {s['sft_step_gflops'] * s['sft_step_s'] / p['sft_step_s'] / peak:.2f} | |")
row("DPO step, 2×256 tokens", "dpo_step_s", "s", False)
row("model load", "load_s", "s", False)
row("peak RSS (whole benchmark)", "peak_rss_mb", "MB", False, "{:.0f}")
PY
