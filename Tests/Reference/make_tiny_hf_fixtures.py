"""Tiny Hugging Face checkpoints with reference outputs, for the directory loader.

    python Tests/Reference/make_tiny_hf_fixtures.py --out Tests/Fixtures/tiny-hf

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). Makes two
randomly initialised Llama models with transformers, each with a BPE tokenizer trained here by
`tokenizers` on data/seeds.jsonl, saved with save_pretrained:

- smollm/  Digits + ByteLevel pre-tokenizer (as SmolLM2), tied embeddings, float32 weights
           sharded over several safetensors files with an index, ChatML template.
- llama3/  Llama 3's Split regex + ByteLevel, separate lm_head, bfloat16 weights in one file,
           rope_scaling of type llama3.
- qwen2/   Qwen2ForCausalLM: biases on q/k/v, Qwen2's Split regex (single digits) + ByteLevel,
           tied embeddings, float32 weights, ChatML template.

Beside each, expected.json holds token ids of a few texts, per-token log-probabilities of
prompt/completion pairs (float64 run of the same weights) and 12 greedy tokens (float32). For
qwen2 also, in float64 with torch.optim.AdamW (betas 0.9/0.999, eps 1e-8, no weight decay):
"sft", one step at lr 1e-3 on the batch of all PAIRS (loss: mean over all completion tokens) and
each pair's mean completion NLL after it; "influence", one step at lr 1e-3 (fresh state) on each
of RECORDS alone, then the mean over REFERENCE of each one's mean completion NLL, before minus
after, the model restored between records.
"""
import argparse
import json
import os

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a tiny test model<|im_end|>\\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLAMA3_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
LLAMA3_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                   "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
                   "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")

TEXTS = ["Hello world", "It's 2024; we're at 3.14159!", "  spaced   out\n\nlines\r\n", "café 中文 😀",
         "def f(x):\n    return x * 2", "I'M SHOUTING 12345", "<|im_start|>user\nHi<|im_end|>\n"]
PAIRS = [("Name a colour.", "Blue."), ("Add 2 and 3.", "2 + 3 = 5."), ("Say something long.", "This is a somewhat longer answer with several words in it, and numbers like 1234.")]


REFERENCE = [("What is two plus two?", "Four."), ("Name a planet.", "Mars is a planet."), ("Spell cat.", "C-A-T.")]
RECORDS = [("Write a haiku about rain.", "Soft rain on the roof, the garden drinks slowly, night listens."),
           ("List three fruits.", "Apple, banana and cherry."),
           ("Describe the sea.", "Blue and wide, always moving, salty and deep, with waves that never stop.")]


def completion_nll(model, pairs):
    """Sum and count of completion-token NLLs per (prompt ids, completion ids) pair."""
    out = []
    for p, c in pairs:
        logits = model(torch.tensor([p + c])).logits[0]
        lp = torch.log_softmax(logits, dim=-1)
        nll = -sum(lp[len(p) + j - 1, c[j]] for j in range(len(c)))
        out.append((nll, len(c)))
    return out


def training_references(out, model_class, encode):
    """The sft and influence blocks of expected.json (see the module docstring)."""
    model = model_class.from_pretrained(out, dtype=torch.float64)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    pairs = [encode(u, a) for u, a in PAIRS]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    per = completion_nll(model, pairs)
    loss = sum(n for n, _ in per) / sum(k for _, k in per)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = [(n / k).item() for n, k in completion_nll(model, pairs)]
    sft = {"lr": 1e-3, "loss_before": loss.item(), "losses_after": after}
    model.load_state_dict(saved)
    refs = [encode(u, a) for u, a in REFERENCE]

    def ref_loss():
        with torch.no_grad():
            return sum((n / k).item() for n, k in completion_nll(model, refs)) / len(refs)

    before = ref_loss()
    records = []
    for u, a in RECORDS:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        opt.zero_grad()
        n, k = completion_nll(model, [encode(u, a)])[0]
        (n / k).backward()
        opt.step()
        after = ref_loss()
        records.append({"instruction": u, "response": a, "influence": before - after})
        model.load_state_dict(saved)
    influence = {"lr": 1e-3, "reference": [{"instruction": u, "response": a} for u, a in REFERENCE],
                 "ref_loss_before": before, "records": records}
    return sft, influence


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
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT if kind == "llama3" else QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=700, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus(root), trainer)
    return tok


def build(root, out, kind):
    os.makedirs(out, exist_ok=True)
    if kind in ("smollm", "qwen2"):
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        bos, eos, template = "<|im_start|>", "<|im_end|>", CHATML
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        bos, eos, template = "<|begin_of_text|>", "<|eot_id|>", LLAMA3_TEMPLATE
    tok = train_tokenizer(root, kind, specials)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, pad_token=eos)
    fast.chat_template = template
    fast.save_pretrained(out)

    torch.manual_seed({"smollm": 1, "llama3": 2, "qwen2": 3}[kind])
    if kind == "qwen2":
        config = Qwen2Config(
            vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6,
            rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False,
            bos_token_id=tok.token_to_id(bos), eos_token_id=tok.token_to_id(eos))
        model_class = Qwen2ForCausalLM
    else:
        model_class = LlamaForCausalLM
    config = config if kind == "qwen2" else LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2 if kind == "smollm" else 1, max_position_embeddings=256,
        rms_norm_eps=1e-5, rope_theta=10000.0 if kind == "smollm" else 500000.0,
        tie_word_embeddings=(kind == "smollm"),
        rope_scaling=None if kind == "smollm" else {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
        bos_token_id=tok.token_to_id(bos), eos_token_id=tok.token_to_id(eos))
    model = model_class(config)
    # Larger-than-default weights so the outputs depend visibly on every layer.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15)
            elif name.endswith(".bias"):
                p.normal_(0, 0.3)
            else:
                p.uniform_(0.5, 1.5)
    dtype = torch.bfloat16 if kind == "llama3" else torch.float32
    model.to(dtype).save_pretrained(out, max_shard_size="100KB" if kind == "smollm" else "10GB", safe_serialization=True)

    # Reference outputs from the saved weights, converted to float64 / float32.
    ref64 = model_class.from_pretrained(out, dtype=torch.float64).eval()
    ref32 = model_class.from_pretrained(out, dtype=torch.float32).eval()
    expected = {"source": f"transformers {model_class.__name__} (see make_tiny_hf_fixtures.py)", "tokens": [], "logprobs": [], "greedy": []}
    for t in TEXTS:
        expected["tokens"].append({"text": t, "ids": tok.encode(t, add_special_tokens=False).ids})
    for user, answer in PAIRS:
        prompt = fast.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        completion = answer + ("<|eot_id|>" if kind == "llama3" else "<|im_end|>")
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
    if kind == "qwen2":
        def encode(user, answer):
            prompt = fast.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
            return tok.encode(prompt, add_special_tokens=False).ids, tok.encode(answer + "<|im_end|>", add_special_tokens=False).ids
        expected["sft"], expected["influence"] = training_references(out, model_class, encode)
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["smollm", "llama3", "qwen2"], help="make one of the fixtures")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for kind in [args.only] if args.only else ("smollm", "llama3", "qwen2"):
        build(root, os.path.join(args.out, kind), kind)


if __name__ == "__main__":
    main()
