"""ROUGE-L reference values from Google's rouge-score, for the dedupe stage.

    python Tests/Reference/make_rouge_fixtures.py --out Tests/Fixtures/rouge.json

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). For pairs of
texts (punctuation, digits, case, accents, non-Latin scripts, repeated words, empty strings), it
writes rouge-score's tokens (use_stemmer=False) and the LCS F-measure of scorer.score(target,
prediction) — the score the Montessori-Instruct reference code thresholds at 0.7.
"""
import argparse
import json
import random

from importlib.metadata import version
from rouge_score import rouge_scorer, tokenize

TEXTS = [
    "Write a poem about the sea.", "Write a short poem about the ocean.", "write A POEM about THE sea!!!",
    "Give three tips for staying healthy.", "Give 3 tips to stay healthy.", "List 10 prime numbers below 100.",
    "Explain photosynthesis to a 10-year-old.", "Explain how photosynthesis works, for a ten year old.",
    "Résumé writing: naïve café tips", "Resume writing naive cafe tips", "日本語のテキスト", "",
    "!!!", "the the the the", "the cat the cat the cat", "a b c d e f g", "g f e d c b a",
    "Translate 'good morning' into French.", "Translate “good morning” into French", "x1 y2 z3 x1y2z3",
    "Classify the sentiment: I love it!", "Classify the sentiment of: I hate it.", "What's 2+2? It's 4.",
    "KELVIN \u212a sign", "Straße", "İstanbul",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = random.Random(5)
    pairs = [(a, b) for i, a in enumerate(TEXTS) for b in TEXTS[i:]]
    # Random word salads over a small vocabulary: many partial overlaps near 0.7.
    vocab = "alpha beta gamma delta the a of to write list give explain".split()
    for _ in range(60):
        a = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 14)))
        b = " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 14)))
        pairs.append((a, b))
    out = {"source": f"rouge-score {version('rouge-score')}, RougeScorer(['rougeL'], use_stemmer=False)",
           "tokens": [{"text": t, "tokens": tokenize.tokenize(t, None)} for t in TEXTS],
           "pairs": [{"target": a, "prediction": b, "fmeasure": scorer.score(a, b)["rougeL"].fmeasure} for a, b in pairs]}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
