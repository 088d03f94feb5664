"""The PyTorch + transformers peer of mi-bench: the same measurements on the same GGUF model.

    python bench/peer_torch.py --model SmolLM2-135M-Instruct.Q4_1.gguf [--batch 8 --length 256 --decode-tokens 64 --repeats 3]

float32, torch.set_num_threads(2) by default; --autocast-bf16 runs every forward (and the
training steps' forward) under torch.autocast("cpu", dtype=torch.bfloat16), as a PyTorch user
turns bf16 on. Prints one JSON object with the keys mi-bench uses:
forward (base model, no output head, batch × length tokens), greedy decoding of exactly
--decode-tokens new tokens at batch 1 and 16 (prompt prefill included), one SFT step
(forward, backward, AdamW on --length tokens, loss on the second half) and one DPO step (two
sequences of --length tokens, sigmoid DPO loss against precomputed reference log-probabilities,
AdamW), load time and peak RSS. Best of --repeats.
"""
import argparse
import contextlib
import json
import os
import resource
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def best(n, fn):
    t = float("inf")
    for _ in range(n):
        s = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - s)
    return t


def forward_flops(c, tokens, seq):
    d, hd = c.hidden_size, c.hidden_size // c.num_attention_heads
    q, kv, f = c.num_attention_heads * hd, c.num_key_value_heads * hd, c.intermediate_size
    linear = 2 * tokens * (d * q + 2 * d * kv + q * d + 3 * d * f)
    return c.num_hidden_layers * (linear + 4 * tokens * seq * q)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--decode-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--autocast-bf16", action="store_true")
    a = ap.parse_args()
    amp = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.autocast_bf16 else contextlib.nullcontext
    torch.set_num_threads(a.threads)
    d, name = os.path.split(os.path.abspath(a.model))
    t0 = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    load = time.perf_counter() - t0
    out = {"compute": "bf16 autocast" if a.autocast_bf16 else "f32", "torch_version": torch.__version__, "transformers_version": transformers.__version__, "threads": torch.get_num_threads(),
           "load_s": round(load, 3)}

    text = "The quick brown fox jumps over the lazy dog, and 3 geese fly south. " * 64
    ids = tok.encode(text, add_special_tokens=False)[: a.length]
    batch = torch.tensor([ids] * a.batch)
    with torch.inference_mode(), amp():
        t = best(a.repeats, lambda: model.model(batch))
    out.update(forward_tokens=a.batch * a.length, forward_s=round(t, 3), forward_tokens_per_s=round(a.batch * a.length / t, 3),
               forward_gflops=round(forward_flops(model.config, a.batch * a.length, a.length) / t / 1e9, 3))

    prompt = tok.apply_chat_template([{"role": "user", "content": "Tell me a story about a lighthouse."}], tokenize=False, add_generation_prompt=True)
    p = tok.encode(prompt, add_special_tokens=False)
    for b in (1, 16):
        inp = torch.tensor([p] * b)
        with torch.inference_mode(), amp():
            t = best(max(1, a.repeats - 1), lambda: model.generate(inp, attention_mask=torch.ones_like(inp), do_sample=False,
                                                                    max_new_tokens=a.decode_tokens, min_new_tokens=a.decode_tokens,
                                                                    pad_token_id=tok.eos_token_id))
        out[f"decode_b{b}_tokens_per_s"] = round(b * a.decode_tokens / t, 3)

    # Training steps on a trainable copy.
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    half = a.length // 2
    seq = torch.tensor([ids])
    rejected = torch.tensor([ids[:half] + list(reversed(ids[half:]))])

    def nll(x):
        with amp():
            logits = model(x).logits
        lp = torch.log_softmax(logits[0, half - 1:-1].float(), dim=-1)
        return -lp.gather(1, x[0, half:, None]).sum()

    def sft():
        opt.zero_grad()
        (nll(seq) / (a.length - half)).backward()
        opt.step()
    out["sft_step_tokens"] = a.length
    out["sft_step_s"] = round(best(a.repeats, sft), 3)
    with torch.no_grad():
        ref_c, ref_r = -nll(seq).item(), -nll(rejected).item()

    def dpo():
        opt.zero_grad()
        z = 0.1 * ((-nll(seq) - ref_c) - (-nll(rejected) - ref_r))
        (-torch.nn.functional.logsigmoid(z)).backward()
        opt.step()
    out["dpo_step_s"] = round(best(a.repeats, dpo), 3)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
