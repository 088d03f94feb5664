#!/usr/bin/env bash
# mi-dedupe at 10k and 100k instructions, and beside the brute-force rouge-score run at a size
# that run finishes in (default 2000), checking that both keep exactly the same records.
# Usage: bench/dedupe.sh [BRUTE_N]   (PEER_PYTHON: a Python with rouge-score)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PEER_PYTHON:-python3}"
dir="${BENCH_DIR:-/tmp/mi-bench}"
brute_n="${1:-2000}"
mkdir -p "$dir"
sources=(data/seeds.jsonl data/reference.jsonl)
for extra in ../shared/data/alpaca_seed_tasks.jsonl.gz ../shared/data/alpaca_eval_reference.jsonl.gz; do
    [ -f "$extra" ] && sources+=("$extra")
done
echo "machine: $(nproc) cores; instructions recombined from: ${sources[*]}"
echo
echo "| records | command | time | kept | peak RSS |"
echo "|---|---|---|---|---|"
for n in "$brute_n" 10000 100000; do
    input="$dir/instructions-$n.jsonl"
    [ -f "$input" ] || "$python" bench/make_instructions.py "$n" "${sources[@]}" > "$input"
    /usr/bin/time -f "%e %M" -o "$dir/time" .build/release/mi-dedupe --quiet --against data/seeds.jsonl "$input" > "$dir/kept-$n.jsonl"
    read -r secs rss < "$dir/time"
    echo "| $n | mi-dedupe --against data/seeds.jsonl | $secs s | $(wc -l < "$dir/kept-$n.jsonl") | $((rss / 1024)) MB |"
done
input="$dir/instructions-$brute_n.jsonl"
/usr/bin/time -f "%e %M" -o "$dir/time" "$python" bench/dedupe_bruteforce.py "$input" --against data/seeds.jsonl > "$dir/brute-$brute_n.txt" 2>/dev/null
read -r secs rss < "$dir/time"
echo "| $brute_n | brute force, rouge-score (bench/dedupe_bruteforce.py) | $secs s | $(wc -l < "$dir/brute-$brute_n.txt") | $((rss / 1024)) MB |"
if diff <(jq -r .id "$dir/kept-$brute_n.jsonl") "$dir/brute-$brute_n.txt" > /dev/null; then
    echo; echo "kept sets at $brute_n records: identical"
else
    echo; echo "kept sets at $brute_n records: DIFFERENT"; exit 1
fi
