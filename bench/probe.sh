#!/usr/bin/env bash
# Seconds per probed record: mi-probe (exact and first-order) beside the reference algorithm in
# PyTorch (bench/peer_probe.py), on the same student, records and a 32-record reference set, one
# after the other. Also the agreement of first-order with exact on the records probed.
# Usage: bench/probe.sh [STUDENT_DIR] [RECORDS] [COUNT] [PEER_COUNT]   (PEER_PYTHON: a Python with torch)
set -euo pipefail
cd "$(dirname "$0")/.."
student="${1:-runs/demo/warmup/student}"
records="${2:-runs/demo/round-1/probe-answered.jsonl.gz}"
count="${3:-8}"; peer_count="${4:-4}"
python="${PEER_PYTHON:-python3}"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
head -n 32 data/reference.jsonl > "$tmp/reference.jsonl"
{ zcat -f "$records" || true; } | head -n "$count" > "$tmp/records.jsonl"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for method in exact first-order; do
    cmd=(env -u OPENBLAS_CORETYPE MI_LOG_LEVEL=debug .build/release/mi-probe --student "$student"
         --reference "$tmp/reference.jsonl" --method "$method" "$tmp/records.jsonl" -o "$tmp/$method.jsonl")
    echo "command: ${cmd[*]}"
    /usr/bin/time -f "%e s wall, %M KB peak" "${cmd[@]}" 2> "$tmp/$method.log" || { cat "$tmp/$method.log"; exit 1; }
    tail -n 1 "$tmp/$method.log"
done
peer=("$python" bench/peer_probe.py --student "$student" --reference "$tmp/reference.jsonl" --records "$tmp/records.jsonl" --count "$peer_count")
echo "command: ${peer[*]}"
peer_json="$("${peer[@]}" 2>/dev/null)"
python3 - "$tmp" "$peer_json" <<'PY'
import json, re, statistics, sys
tmp, peer = sys.argv[1], json.loads(sys.argv[2])
def per_record(method):
    return [float(m.group(1)) for m in re.finditer(r"scored .* in ([0-9.e-]+) s", open(f"{tmp}/{method}.log").read())]
def influences(method):
    return [json.loads(l)["influence"] for l in open(f"{tmp}/{method}.jsonl")]
def ranks(xs):
    order = sorted(range(len(xs)), key=lambda i: xs[i]); r = [0.0] * len(xs)
    for k, i in enumerate(order): r[i] = k
    return r
def spearman(a, b):
    ra, rb = ranks(a), ranks(b); n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5
ex, fo = statistics.median(per_record("exact")), statistics.median(per_record("first-order"))
ie, io = influences("exact"), influences("first-order")
print(f"\nPyTorch {peer['torch_version']}, transformers {peer['transformers_version']}, {peer['threads']} threads; "
      f"{len(ie)} records (PyTorch: {peer['records']}), {peer['reference']} reference records\n")
print("| method | seconds per record (median) | beside PyTorch | beside exact |")
print("|---|---|---|---|")
print(f"| PyTorch reference algorithm (state restored from memory) | {peer['seconds_per_record']:.2f} | 1 | |")
print(f"| mi-probe exact | {ex:.2f} | {peer['seconds_per_record'] / ex:.2f}× faster | 1 |")
print(f"| mi-probe first-order | {fo:.2f} | {peer['seconds_per_record'] / fo:.2f}× faster | {ex / fo:.2f}× faster |")
same = sum((a > 0) == (b > 0) for a, b in zip(ie, io))
print(f"\nfirst-order against exact on these records: Spearman {spearman(ie, io):.3f}, same sign {same} of {len(ie)}, "
      f"largest |difference| {max(abs(a - b) for a, b in zip(ie, io)):.2e} (influences up to {max(abs(a) for a in ie):.2e})")
PY
