#!/usr/bin/env bash
# How far two scorings of the same candidates agree (mi-probe outputs joined by id): the same
# records with another answer draw, another reference set, another student. Prints
#   - the Pearson correlation of their influences over the records both hold,
#   - how often two candidates of one prompt are ordered alike (ties left out),
#   - the length-adjusted pairs of each (mi-pair --mode all --length-adjust) and how many of A's
#     pairs B makes the same way or reversed: what DPO would be taught by one and by the other.
# Needs jq and mi-pair (MI_BIN_DIR, default .build/release).
#   scripts/compare-scored.sh A.jsonl.gz B.jsonl.gz
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 A.jsonl[.gz] B.jsonl[.gz]" >&2; exit 64; }
cd "$(dirname "$0")/.."
bin="${MI_BIN_DIR:-.build/release}"
a=$1 b=$2
for f in "$a" "$b"; do [ -r "$f" ] || { echo "$0: $f: cannot read" >&2; exit 66; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rows() { zcat -f "$1" | jq -r '"\(.id)\t\(.prompt_id)\t\(.influence)"' | sort -t $'\t' -k1,1; }
rows "$a" > "$tmp/a"
rows "$b" > "$tmp/b"
join -t $'\t' "$tmp/a" "$tmp/b" | cut -f1,2,3,5 > "$tmp/joined" # id, prompt, influence A, influence B
only=$(( $(wc -l < "$tmp/a") + $(wc -l < "$tmp/b") - 2 * $(wc -l < "$tmp/joined") ))
awk -F '\t' -v only="$only" '
    { n++; x = $3; y = $4; sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y }
    END {
        if (n < 3) { print "fewer than 3 records in both"; exit 1 }
        r = (n * sxy - sx * sy) / sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))
        printf "records in both: %d (in one only: %d); influence Pearson r %.3f\n", n, only, r
    }' "$tmp/joined"
sort -t $'\t' -k2,2 "$tmp/joined" | awk -F '\t' '
    function flush(   i, j, d) {
        for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) {
            d = (x[i] - x[j]) * (y[i] - y[j])
            if (d > 0) agree++; else if (d < 0) differ++
        }
    }
    $2 != prompt { flush(); prompt = $2; k = 0 }
    { k++; x[k] = $3; y[k] = $4 }
    END {
        flush()
        if (agree + differ == 0) { print "within-prompt order: no pairs"; exit }
        printf "within-prompt order: %d of %d pairs alike (%.3f)\n", agree, agree + differ, agree / (agree + differ)
    }'
for s in a b; do
    zcat -f "${!s}" > "$tmp/$s.jsonl"
    "$bin/mi-pair" -q --length-adjust "$tmp/$s.jsonl" -o "$tmp/pairs-$s.jsonl"
    jq -r '"\(.chosen_id) \(.rejected_id)"' "$tmp/pairs-$s.jsonl" | sort > "$tmp/ids-$s"
done
same=$(comm -12 "$tmp/ids-a" "$tmp/ids-b" | wc -l)
reversed=$(awk '{ print $2 " " $1 }' "$tmp/ids-b" | sort | comm -12 "$tmp/ids-a" - | wc -l)
echo "length-adjusted pairs: A $(wc -l < "$tmp/ids-a"), B $(wc -l < "$tmp/ids-b"); of A's, B makes $same the same way and $reversed reversed"
