#!/usr/bin/env bash
# Record throughput: mi-validate --pass from a .jsonl.gz to a .jsonl.gz, beside `zcat | jq -c .`
# on the same file. Prints a Markdown table row per command with MB/s of JSON and peak RSS.
# Usage: bench/validate.sh [SIZE_MB]   (default 1024; the input is built once under $BENCH_DIR)
set -euo pipefail
size_mb="${1:-1024}"
dir="${BENCH_DIR:-/tmp/mi-bench}"
bin="$(cd "$(dirname "$0")/.." && pwd)/.build/release"
src="${REFERENCE_SET:-$(dirname "$0")/../data/reference.jsonl}"
mkdir -p "$dir"
input="$dir/records-${size_mb}MB.jsonl.gz"

if [ ! -f "$input" ]; then
    echo "building $input from $src" >&2
    python3 - "$src" "$size_mb" <<'PY' | gzip -1 > "$input.tmp"
import gzip, json, sys
src, size_mb = sys.argv[1], int(sys.argv[2])
opener = gzip.open if src.endswith(".gz") else open
with opener(src, "rt", encoding="utf-8") as f:
    base = [json.loads(line) for line in f if line.strip()]
out, written, i = sys.stdout, 0, 0
while written < size_mb << 20:
    r = dict(base[i % len(base)])
    r["id"] = f"r{i:09d}"
    r["influence"] = (i % 997) / 997 - 0.5
    line = json.dumps(r, ensure_ascii=False) + "\n"
    out.write(line)
    written += len(line.encode())
    i += 1
PY
    mv "$input.tmp" "$input"
fi
bytes=$(zcat "$input" | wc -c)
records=$(zcat "$input" | wc -l)

measure() { # label, command...
    local label="$1"; shift
    local t0 t1 rss
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$dir/rss" bash -o pipefail -c "$*"
    t1=$(date +%s.%N)
    rss=$(tail -1 "$dir/rss")
    python3 -c "import sys; b,r,t,k=map(float,sys.argv[1:5]); print(f'| {sys.argv[5]} | {t:.1f} s | {b/t/1e6:.0f} MB/s | {r/t/1e3:.0f} k rec/s | {k/1024:.0f} MB |')" \
        "$bytes" "$records" "$(echo "$t1 - $t0" | bc)" "$rss" "$label"
}

echo "input: $input ($((bytes >> 20)) MiB of JSON, $records records, $(($(stat -c %s "$input") >> 20)) MiB gzipped); $(nproc) cores"
echo
echo "| command | time | JSON throughput | records | peak RSS |"
echo "|---|---|---|---|---|"
measure "mi-validate --schema response --pass -o out.jsonl.gz" "$bin/mi-validate --quiet --schema response --pass -o $dir/out.jsonl.gz $input"
measure "zcat \| jq -c . \| gzip -1 > out.jsonl.gz" "zcat $input | jq -c . | gzip -1 > $dir/jq.jsonl.gz"
measure "mi-validate --schema response (check only)" "$bin/mi-validate --quiet --schema response $input"
measure "zcat \| jq -c . > /dev/null" "zcat $input | jq -c . > /dev/null"
