#!/usr/bin/env bash
# The model core beside PyTorch + transformers on the same model and machine, one after the
# other: mi-bench with f32 and with bf16 products, PyTorch in float32 and with bf16 autocast.
# Prints the commands, the machine and a Markdown table (ratio > 1: montessori-swift faster).
# Usage: bench/model.sh [MODEL]   (PEER_PYTHON: a Python with torch and transformers)
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-${MI_CACHE_DIR:-$HOME/.cache/montessori-swift}/SmolLM2-135M-Instruct.Q4_1.gguf}"
python="${PEER_PYTHON:-python3}"
swift_cmd=(env -u OPENBLAS_CORETYPE .build/release/mi-bench --model "$model")
peer_cmd=("$python" bench/peer_torch.py --model "$model")
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(grep -o -m1 -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | xargs)"
echo "commands: ${swift_cmd[*]} --compute f32|bf16  |  ${peer_cmd[*]} [--autocast-bf16]"
s32="$("${swift_cmd[@]}" --compute f32)"
s16="$("${swift_cmd[@]}" --compute bf16)"
p32="$("${peer_cmd[@]}" 2>/dev/null)"
p16="$("${peer_cmd[@]}" --autocast-bf16 2>/dev/null)"
python3 - "$s32" "$s16" "$p32" "$p16" <<'PY'
import json, sys
s32, s16, p32, p16 = (json.loads(a) for a in sys.argv[1:5])
sgemm, bf16 = s32["sgemm_gflops"], s16.get("bf16_gemm_gflops")
def show(v, fmt):
    return "—" if v is None else fmt.format(v)
def row(label, key, unit, higher_better, fmt="{:.2f}"):
    vals = [d.get(key) for d in (s32, s16, p32, p16)]
    a, b = vals[1], vals[3]
    ratio = "" if a is None or b is None else f"{(a / b if higher_better else b / a):.2f}×"
    print(f"| {label} | " + " | ".join(f"{show(v, fmt)} {unit}" for v in vals) + f" | {ratio} |")
print(f"\nOpenBLAS core {s32['openblas_core']}, sgemm peak {sgemm:.0f} GFLOP/s (2048³, {s32['threads']} threads); "
      f"bf16 product peak {show(bf16, '{:.0f}')} GFLOP/s (2048³, B packed); "
      f"PyTorch {p32['torch_version']}, transformers {p32['transformers_version']}, {p32['threads']} threads\n")
print("| measure | ours f32 | ours bf16 | PyTorch f32 | PyTorch bf16 autocast | ours bf16 vs PyTorch bf16 |")
print("|---|---|---|---|---|---|")
row("forward 8×256 tokens", "forward_s", "s", False)
row("forward throughput", "forward_tokens_per_s", "tok/s", True, "{:.0f}")
row("decode, batch 1", "decode_b1_tokens_per_s", "tok/s", True, "{:.1f}")
row("decode, batch 16", "decode_b16_tokens_per_s", "tok/s", True, "{:.1f}")
row("SFT step, 256 tokens (fwd+bwd+AdamW)", "sft_step_s", "s", False)
row("DPO step, 2×256 tokens", "dpo_step_s", "s", False)
row("model load", "load_s", "s", False)
row("peak RSS (whole benchmark)", "peak_rss_mb", "MB", False, "{:.0f}")
def frac(gflops, peak):
    return "—" if gflops is None or not peak else f"{gflops / peak:.2f}"
f32_fwd, f16_fwd = s32["forward_gflops"], s16["forward_gflops"]
print(f"\nForward as a fraction of the peak of its own arithmetic: ours f32 {frac(f32_fwd, sgemm)} of sgemm, "
      f"ours bf16 {frac(f16_fwd, bf16)} of the bf16 product peak; PyTorch f32 {frac(p32['forward_gflops'], sgemm)} of sgemm, "
      f"PyTorch bf16 {frac(p16['forward_gflops'], bf16)} of our bf16 product peak.")
print(f"SFT step: ours f32 {frac(s32['sft_step_gflops'], sgemm)} of sgemm, ours bf16 {frac(s16['sft_step_gflops'], bf16)} of the bf16 peak; "
      f"PyTorch bf16 {frac(s16['sft_step_gflops'] * s16['sft_step_s'] / p16['sft_step_s'], bf16)} of the bf16 peak.")
PY
