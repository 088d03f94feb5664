"""BPE merge order against the `tokenizers` library, on merge lists whose ranks do not follow
the order in which their tokens can form.

    python Tests/Reference/make_merge_order_fixture.py --out Tests/Fixtures/merge-order.json

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). Builds a few
random BPE vocabularies over a four-letter alphabet ("a", "b", "c" and the SentencePiece space
"▁"): each merge joins two tokens already in the vocabulary, and the merges' ranks are then
shuffled, so a merge can outrank the merge that makes one of its parts. `tokenizers` applies
merges one at a time (the lowest rank first, leftmost first among equals), so a pair formed by a
merge can go before a second occurrence of the pair just merged. Each vocabulary is wired as
Llama 2's tokenizer.json without the dummy prefix (normalizer Replace(" ", "▁"), no
pre-tokenizer: the whole text is one word) and encodes short texts that show the order, and one
text of 4,000 characters.
"""

import argparse
import json
import random

from tokenizers import Tokenizer, models, normalizers

ALPHABET = ["a", "b", "c", "\u2581"]


def vocabulary(rng, size):
    vocab = list(ALPHABET)
    merges = []
    while len(vocab) < size:
        left, right = rng.choice(vocab), rng.choice(vocab)
        if left + right in vocab or len(left + right) > 6:
            continue
        merges.append((left, right))
        vocab.append(left + right)
    rng.shuffle(merges)
    return vocab, merges


def tokenizer(vocab, merges):
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=merges))
    tok.normalizer = normalizers.Replace(" ", "\u2581")
    return tok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    rng = random.Random(7)
    cases = []
    for size in (12, 24, 48, 96):
        vocab, merges = vocabulary(rng, size)
        tok = tokenizer(vocab, merges)
        texts = ["".join(rng.choice("abc ") for _ in range(rng.randint(2, 12))) for _ in range(40)]
        texts.append("".join(rng.choice("abc ") for _ in range(4000)))
        cases.append({
            "vocabulary": vocab,
            "merges": [f"{l} {r}" for l, r in merges],
            "texts": [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts],
        })
    with open(args.out, "w") as f:
        json.dump({"source": "tokenizers (see make_merge_order_fixture.py)", "cases": cases}, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
