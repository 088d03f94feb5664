"""Reference fixtures for the model core, written by independent implementations.

    python Tests/Reference/make_model_fixtures.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out Tests/Fixtures

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). Writes:

- dequant.json   ggml blocks of every supported type (random, plus real blocks of the model)
                 dequantised by the `gguf` package's numpy code.
- tokens.json    token ids of a varied corpus from Hugging Face `tokenizers`, built from the
                 GGUF vocabulary and merges with SmolLM2's own pipeline (special tokens split
                 first, then Digits(individual_digits) and ByteLevel). The ids of transformers'
                 GGUF tokenizer (which drops the Digits step) are stored beside them.
- logprobs.json  per-token log-probabilities of chat-formatted prompt/completion pairs from
                 transformers' Llama loaded from the GGUF (it dequantises and undoes llama.cpp's
                 q/k row permutation itself), run in float64 and float32.
- greedy.json    greedy continuations (24 new tokens) from the same model in float32.
"""
import argparse
import json
import os
import struct

import numpy as np
import torch
from gguf import GGUFReader, GGMLQuantizationType
from gguf.quants import dequantize
from tokenizers import Tokenizer, AddedToken, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer
import transformers, tokenizers, gguf
from importlib.metadata import version as package_version

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chat_prompt(user):
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


def field(reader, key):
    f = reader.fields[key]
    if len(f.data) == 1 and f.types[0] != gguf.GGUFValueType.ARRAY:
        v = f.parts[f.data[0]]
        return bytes(v).decode() if f.types[0] == gguf.GGUFValueType.STRING else v.tolist()[0]
    if f.types[-1] == gguf.GGUFValueType.STRING:
        return [bytes(f.parts[i]).decode() for i in f.data]
    return [f.parts[i].tolist()[0] for i in f.data]


def bits(values):
    return [int(x) for x in np.asarray(values, dtype=np.float32).view(np.uint32)]


def dequant_fixture(reader, rng):
    # Block layouts: where the f16 scale fields sit, so random bytes get finite, moderate scales.
    scale_offsets = {
        "F16": None, "BF16": None, "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
        "Q8_0": [0], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
    }
    out = []
    for name, offsets in scale_offsets.items():
        qtype = GGMLQuantizationType[name]
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = 2 if block_elems > 1 else 64
        raw = rng.integers(0, 256, size=n_blocks * block_bytes, dtype=np.uint8)
        if name in ("F16", "BF16"):
            # keep values finite: random mantissas with a moderate exponent
            vals = rng.standard_normal(n_blocks).astype(np.float32)
            raw = (vals.astype(np.float16).view(np.uint8) if name == "F16"
                   else (vals.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8))
        else:
            for b in range(n_blocks):
                for off in offsets:
                    scale = np.float16(rng.uniform(0.001, 0.05) * (1 if off != 2 or name != "Q4_1" else -1))
                    raw[b * block_bytes + off: b * block_bytes + off + 2] = np.frombuffer(scale.tobytes(), np.uint8)
        values = dequantize(raw, qtype).reshape(-1)
        out.append({"type": name, "ggml_type_id": int(qtype), "block_elems": block_elems,
                    "block_bytes": block_bytes, "hex": bytes(raw).hex(), "bits": bits(values)})
    # Two real blocks of every tensor type the model file has.
    seen = set()
    for t in reader.tensors:
        if t.tensor_type.name in seen:
            continue
        seen.add(t.tensor_type.name)
        block_elems, block_bytes = gguf.GGML_QUANT_SIZES[t.tensor_type]
        raw = np.asarray(t.data).reshape(-1).view(np.uint8)[: 2 * block_bytes if block_elems > 1 else 2 * 32 * block_bytes]
        values = dequantize(raw.copy(), t.tensor_type).reshape(-1)
        out.append({"type": t.tensor_type.name, "ggml_type_id": int(t.tensor_type), "block_elems": block_elems,
                    "block_bytes": block_bytes, "hex": bytes(raw).hex(), "bits": bits(values), "tensor": t.name})
    return {"source": f"gguf {package_version('gguf')} gguf.quants.dequantize", "types": out}


CORPUS = [
    "Hello world", "Hello, world! How are you?", "  leading spaces", "trailing spaces   ",
    "tabs\tand\t\ttabs", "multiple   spaces   between", "line one\nline two\n\nline four", "crlf\r\nline\r\n",
    "1234567", "pi is 3.14159, e is 2.71828", "In 2024 there were 365 days.", "a  1 b   22",
    "It's, isn't, we're, they've, I'm, you'll, she'd", "IT'S WE'RE THEY'VE", "'s 't 're",
    "def add(a, b):\n    return a + b\n", "int main(void) { printf(\"%d\\n\", 42); return 0; }",
    "https://example.com/path?query=1&x=y", "café, naïve, Zürich, résumé", "Straße und Maß",
    "中文分词测试", "日本語のテキスト", "한국어 문장", "emoji 😀🎉 and 👩‍👩‍👧‍👦 family 🇫🇷 flag",
    "مرحبا بالعالم", "Ελληνικά κείμενα", "<|im_start|>user\nHi<|im_end|>\n", "<|endoftext|>",
    "text<|im_end|>more", "<|im_start|><|im_end|>", "", " ", "!!!???...", "—dash– and “quotes”",
    "x²+y²=z² ½ ¾ ①②", "\u00a0non-breaking\u2003spaces", "mixed123abc456", "    indented code\n\tx = 1",
    "The quick brown fox jumps over the lazy dog.", "A" * 50,
]


def reference_tokenizer(reader):
    """SmolLM2's tokenizer pipeline built with `tokenizers` from the GGUF vocabulary and merges."""
    tokens = field(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field(reader, "tokenizer.ggml.merges")]
    types = field(reader, "tokenizer.ggml.token_type")
    tok = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges, unk_token=None, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = [i for i, t in enumerate(types) if t in (3, 4)]
    tok.add_special_tokens([AddedToken(tokens[i], special=True, normalized=False) for i in specials])
    assert all(tok.token_to_id(tokens[i]) == i for i in specials)
    return tok, tokens, specials


def tokenizer_fixture(reader, gguf_dir, gguf_name):
    tok, tokens, specials = reference_tokenizer(reader)
    hf = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=gguf_name)
    cases = []
    for text in CORPUS:
        ids = tok.encode(text, add_special_tokens=False).ids
        via = hf.encode(text, add_special_tokens=False)
        case = {"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)}
        if via != ids:
            case["transformers_gguf_ids"] = via
        cases.append(case)
    return {
        "source": f"tokenizers {tokenizers.__version__} (Digits + ByteLevel, as SmolLM2's tokenizer.json); "
                  f"transformers {transformers.__version__} GGUF tokenizer for comparison",
        "special": [{"id": i, "content": tokens[i]} for i in specials],
        "bos_id": field(reader, "tokenizer.ggml.bos_token_id"),
        "eos_id": field(reader, "tokenizer.ggml.eos_token_id"),
        "add_bos_token": bool(field(reader, "tokenizer.ggml.add_bos_token")),
        "cases": cases,
    }, tok


PAIRS = [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Say hi.", "Hi!"),
    ("Write a Python function that returns the square of a number.",
     "```python\ndef square(x):\n    return x * x\n```\nThis function multiplies the number by itself."),
    ("Translate 'good morning' into French and German.", "French: « Bonjour ». German: „Guten Morgen“. Both are café-friendly greetings 😀."),
    ("Explain photosynthesis in a few sentences.",
     "Photosynthesis is the process by which green plants, algae and some bacteria turn light energy into chemical energy. "
     "Using sunlight, they combine carbon dioxide from the air with water from the soil to make glucose, a sugar that "
     "stores energy, and release oxygen as a by-product. The reaction takes place mainly in the chloroplasts of leaf "
     "cells, where the pigment chlorophyll absorbs red and blue light. The glucose feeds the plant's growth and, through "
     "food chains, nearly every other living thing on Earth, while the oxygen keeps the air breathable for animals."),
    ("List three prime numbers.", "2, 3 and 5 are prime numbers; so is 1234567? No: 1234567 = 127 × 9721."),
]

GREEDY = ["What is 2 + 2?", "Name a colour of the sky.", "Write one sentence about cats.", "Give me a synonym for happy."]


def model_fixtures(gguf_dir, gguf_name, tok):
    model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32)
    model.eval()
    model64 = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=gguf_name, dtype=torch.float32).double().eval()
    cases = []
    for user, answer in PAIRS:
        prompt, completion = chat_prompt(user), answer + "<|im_end|>"
        p = tok.encode(prompt, add_special_tokens=False).ids
        c = tok.encode(completion, add_special_tokens=False).ids
        ids = torch.tensor([p + c])
        case = {"prompt": prompt, "completion": completion, "prompt_ids": p, "completion_ids": c}
        for key, m in (("logprobs", model64), ("logprobs_f32", model)):
            with torch.no_grad():
                logits = m(ids).logits[0]
            lp = torch.log_softmax(logits.double(), dim=-1)
            case[key] = [lp[len(p) + j - 1, c[j]].item() for j in range(len(c))]
        case["sum"] = sum(case["logprobs"])
        cases.append(case)
    greedy = []
    for user in GREEDY:
        prompt = chat_prompt(user)
        p = tok.encode(prompt, add_special_tokens=False).ids
        # Plain argmax, one full forward per step: no generation-config processors involved.
        seq = list(p)
        with torch.no_grad():
            for _ in range(24):
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].argmax()))
        new = seq[len(p):]
        greedy.append({"prompt": prompt, "prompt_ids": p, "new_ids": new, "text": tok.decode(new, skip_special_tokens=False)})
    source = f"transformers {transformers.__version__}, torch {torch.__version__}, LlamaForCausalLM from the GGUF"
    return ({"source": source + " (float64 and float32)", "cases": cases},
            {"source": source + " (float32, argmax of a full forward per step, 24 new tokens, end-of-turn not treated as a stop)", "cases": greedy})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    gguf_dir, gguf_name = os.path.split(os.path.abspath(args.gguf))
    reader = GGUFReader(args.gguf)
    rng = np.random.default_rng(20250214)
    os.makedirs(args.out, exist_ok=True)

    def write(name, obj):
        with open(os.path.join(args.out, name), "w", encoding="utf-8") as f:
            json.dump(obj, f, ensure_ascii=False, indent=1)
            f.write("\n")

    write("dequant.json", dequant_fixture(reader, rng))
    tokens, tok = tokenizer_fixture(reader, gguf_dir, gguf_name)
    write("tokens.json", tokens)
    logprobs, greedy = model_fixtures(gguf_dir, gguf_name, tok)
    write("logprobs.json", logprobs)
    write("greedy.json", greedy)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
