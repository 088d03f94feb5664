"""Synthetic instruction records for the dedupe benchmark: real instructions (the files given)
recombined with random word edits, so that many records are near duplicates of each other.

    python bench/make_instructions.py N SOURCE.jsonl[.gz]... > out.jsonl
"""
import gzip
import json
import random
import sys

n = int(sys.argv[1])
base = []
for path in sys.argv[2:]:
    with (gzip.open if path.endswith(".gz") else open)(path, "rt", encoding="utf-8") as f:
        base += [json.loads(line)["instruction"] for line in f if line.strip()]
words = [w for text in base for w in text.split()]
rng = random.Random(1)
for i in range(n):
    text = rng.choice(base).split()
    r = rng.random()
    if r < 0.3:  # small edits: near duplicates
        for _ in range(rng.randint(0, 3)):
            text[rng.randrange(len(text))] = rng.choice(words)
    elif r < 0.6:  # splice two instructions
        other = rng.choice(base).split()
        text = text[: rng.randint(1, len(text))] + other[rng.randint(0, len(other) - 1):]
    else:  # heavy edits: mostly new text
        text = [w if rng.random() < 0.3 else rng.choice(words) for w in text] + [rng.choice(words) for _ in range(rng.randint(0, 6))]
    print(json.dumps({"id": f"i{i:06d}", "instruction": " ".join(text)}))
