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

Two more kinds of case are byte-level (GPT-2's pre-tokenizer and byte alphabet, a space is "Ġ"),
each with the tokenizer.json that `tokenizers` writes for it:
- `ignore_merges` (as in Llama 3's tokenizer.json): a word that is a token as a whole becomes that
  token, merged or not. Their texts are partly words of the vocabulary.
- a pair listed twice among the merges: `tokenizers` keeps the later rank.
The script checks that every such case has texts whose ids the option changes.
"""

import argparse
import json
import random
import re

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

ALPHABET = ["a", "b", "c", "\u2581"]


def vocabulary(rng, size, alphabet=ALPHABET):
    vocab = list(alphabet)
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


def byte_level(vocab, merges, ignore_merges=False):
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(vocab)}, merges=merges, ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return tok


def byte_level_texts(rng, vocab):
    """Short random texts, and texts whose pre-tokenized words are words of the vocabulary."""
    words = [t.replace("\u0120", " ") for t in vocab if re.fullmatch("\u0120?[abc]+", t)]
    spaced = [w for w in words if w.startswith(" ")]
    texts = ["".join(rng.choice("abc ") for _ in range(rng.randint(2, 16))) for _ in range(30)]
    texts += [rng.choice(words) + "".join(rng.choice(spaced) for _ in range(rng.randint(0, 3))) for _ in range(60)]
    return texts


def byte_level_case(tok, vocab, merges, texts, other):
    changed = sum(tok.encode(t).ids != other.encode(t).ids for t in texts)
    assert changed > 0, "no text shows the option"
    return {
        "spelling": "byte-level",
        "vocabulary": vocab,
        "merges": [f"{l} {r}" for l, r in merges],
        "tokenizer_json": tok.to_str(),
        "changed": changed,
        "texts": [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts],
    }


def byte_level_cases(rng):
    cases = []
    alphabet = ["a", "b", "c", "\u0120"]
    for size in (48, 96, 192):
        vocab, merges = vocabulary(rng, size, alphabet)
        texts = byte_level_texts(rng, vocab)
        case = byte_level_case(byte_level(vocab, merges, True), vocab, merges, texts, byte_level(vocab, merges))
        case["ignore_merges"] = True
        cases.append(case)
    vocab, merges = vocabulary(rng, 48, alphabet)
    repeated = list(merges)
    for _ in range(12):
        at = rng.randrange(1, len(repeated))
        repeated.insert(rng.randrange(at, len(repeated) + 1), repeated[rng.randrange(at)])
    texts = byte_level_texts(rng, vocab)
    first = []
    for m in repeated:
        if m not in first:
            first.append(m)
    case = byte_level_case(byte_level(vocab, repeated), vocab, repeated, texts, byte_level(vocab, first))
    case["repeated_merges"] = "last"
    cases.append(case)
    return cases


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
    cases += byte_level_cases(rng)
    with open(args.out, "w") as f:
        json.dump({"source": "tokenizers (see make_merge_order_fixture.py)", "cases": cases}, f, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
