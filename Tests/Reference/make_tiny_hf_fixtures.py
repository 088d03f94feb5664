"""Tiny Hugging Face checkpoints with reference outputs, for the directory loader.

    python Tests/Reference/make_tiny_hf_fixtures.py --out Tests/Fixtures/tiny-hf

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). Makes two
randomly initialised Llama models with transformers, each with a BPE tokenizer trained here by
`tokenizers` on data/seeds.jsonl, saved with save_pretrained:

- smollm/  Digits + ByteLevel pre-tokenizer (as SmolLM2), tied embeddings, float32 weights
           sharded over several safetensors files with an index, ChatML template.
- llama3/  Llama 3's Split regex + ByteLevel, separate lm_head, bfloat16 weights in one file,
           rope_scaling of type llama3.

Beside each, expected.json holds token ids of a few texts, per-token log-probabilities of
prompt/completion pairs (float64 run of the same weights) and 12 greedy tokens (float32).
"""
import argparse
import json
import os

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a tiny test model<|im_end|>\\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                   "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")

TEXTS = ["Hello world", "It's 2024; we're at 3.14159!", "  spaced   out\n\nlines\r\n", "café 中文 😀",
         "def f(x):\n    return x * 2", "I'M SHOUTING 12345", "<|im_start|>user\nHi<|im_end|>\n"]
PAIRS = [("Name a colour.", "Blue."), ("Add 2 and 3.", "2 + 3 = 5."), ("Say something long.", "This is a somewhat longer answer with several words in it, and numbers like 1234.")]


def corpus(root):
    with open(os.path.join(root, "data", "seeds.jsonl"), encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            yield r["instruction"]
            yield r.get("output", "")


def train_tokenizer(root, kind, specials):
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, ignore_merges=False))
    if kind == "smollm":
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(root), trainer)
    return tok


def build(root, out, kind):
    os.makedirs(out, exist_ok=True)
    if kind == "smollm":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        bos, eos, template = "<|im_start|>", "<|im_end|>", CHATML
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        bos, eos, template = "<|begin_of_text|>", "<|eot_id|>", LLAMA3_TEMPLATE
    tok = train_tokenizer(root, kind, specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos)
    fast.chat_template = template
    fast.save_pretrained(out)

    torch.manual_seed(1 if kind == "smollm" else 2)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2 if kind == "smollm" else 1, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0 if kind == "smollm" else 500000.0,
        tie_word_embeddings=(kind == "smollm"),
        rope_scaling=None if kind == "smollm" else {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        bos_token_id=tok.token_to_id(bos), eos_token_id=tok.token_to_id(eos))
    model = LlamaForCausalLM(config)
    # Larger-than-default weights so the outputs depend visibly on every layer.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15)
            else:
                p.uniform_(0.5, 1.5)
    dtype = torch.float32 if kind == "smollm" else torch.bfloat16
    model.to(dtype).save_pretrained(out, max_shard_size="100KB" if kind == "smollm" else "10GB", safe_serialization=True)

    # Reference outputs from the saved weights, converted to float64 / float32.
    ref64 = LlamaForCausalLM.from_pretrained(out, dtype=torch.float64).eval()
    ref32 = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    expected = {"source": "transformers LlamaForCausalLM (see make_tiny_hf_fixtures.py)", "tokens": [], "logprobs": [], "greedy": []}
    for t in TEXTS:
        expected["tokens"].append({"text": t, "ids": tok.encode(t, add_special_tokens=False).ids})
    for user, answer in PAIRS:
        prompt = fast.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        completion = answer + ("<|im_end|>" if kind == "smollm" else "<|eot_id|>")
        p = tok.encode(prompt, add_special_tokens=False).ids
        c = tok.encode(completion, add_special_tokens=False).ids
        with torch.no_grad():
            lp = torch.log_softmax(ref64(torch.tensor([p + c])).logits[0], dim=-1)
        expected["logprobs"].append({"user": user, "prompt": prompt, "completion": completion, "prompt_ids": p, "completion_ids": c,
                                     "logprobs": [lp[len(p) + j - 1, c[j]].item() for j in range(len(c))]})
        seq = list(p)
        with torch.no_grad():
            for _ in range(12):
                seq.append(int(ref32(torch.tensor([seq])).logits[0, -1].argmax()))
        expected["greedy"].append({"prompt_ids": p, "new_ids": seq[len(p):]})
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for kind in ("smollm", "llama3"):
        build(root, os.path.join(args.out, kind), kind)


if __name__ == "__main__":
    main()
