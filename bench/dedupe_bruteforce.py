"""The reference dedupe: every new instruction against every kept one with rouge-score (as the
Montessori-Instruct and self-instruct code do, here in one process), keep if no ROUGE-L F > t.

    python bench/dedupe_bruteforce.py INPUT.jsonl [--against SEEDS.jsonl] [--threshold 0.7] > kept_ids.txt
"""
import argparse
import gzip
import json
import time

from rouge_score import rouge_scorer

ap = argparse.ArgumentParser()
ap.add_argument("input")
ap.add_argument("--against", default=None)
ap.add_argument("--threshold", type=float, default=0.7)
a = ap.parse_args()
scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
tokenize = scorer._tokenizer.tokenize
kept = []
if a.against:
    with (gzip.open if a.against.endswith(".gz") else open)(a.against, "rt") as f:
        kept = [tokenize(json.loads(l)["instruction"]) for l in f if l.strip()]
start = time.perf_counter()
n = 0
with open(a.input) as f:
    for line in f:
        r = json.loads(line)
        t = tokenize(r["instruction"])
        n += 1
        if any(t == k or rouge_scorer._score_lcs(t, k).fmeasure > a.threshold for k in kept):
            continue
        kept.append(t)
        print(r["id"])
print(f"brute force: {n} records in {time.perf_counter() - start:.1f} s", file=__import__("sys").stderr)
