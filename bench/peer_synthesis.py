"""The transformers peer of mi-generate and mi-respond: the same prompts sampled with
model.generate (temperature, top-p; batch of all samples of a round), timed end to end.

    python bench/peer_synthesis.py --model M.gguf --seeds data/seeds.jsonl --prompts 16 --samples 4 --max-tokens 128

Prints JSON: instructions per minute (samples of the generation prompt) and responses per minute
(answers to the seed instructions at temperature 0.6, top-p 0.9, --response-tokens).
"""
import argparse
import json
import os
import random
import time

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ap = argparse.ArgumentParser()
ap.add_argument("--model", required=True)
ap.add_argument("--seeds", required=True)
ap.add_argument("--prompts", type=int, default=16)
ap.add_argument("--samples", type=int, default=4)
ap.add_argument("--max-tokens", type=int, default=128)
ap.add_argument("--responses", type=int, default=32)
ap.add_argument("--response-tokens", type=int, default=128)
ap.add_argument("--threads", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
d, name = os.path.split(os.path.abspath(a.model))
model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
tok.padding_side = "left"
seeds = [json.loads(l)["instruction"] for l in open(a.seeds) if l.strip()]
rng = random.Random(1)


def chat(user):
    return tok.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)


def sample(texts, max_tokens, temperature, top_p, batch=16, **extra):
    for i in range(0, len(texts), batch):
        enc = tok(texts[i:i + batch], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p, max_new_tokens=max_tokens,
                           pad_token_id=tok.eos_token_id, **extra)


prompts = []
for p in range(a.prompts):
    ex = rng.sample(seeds, 8)
    msg = "You are asked to come up with one new task instruction for an AI assistant. Here are some example tasks:\n\n" + \
          "".join(f"{i + 1}. {e}\n" for i, e in enumerate(ex)) + \
          "\nWrite exactly one new task instruction that is different from the examples. It must be self-contained, answerable in text, and at most three sentences long. Put it between <instruction> and </instruction>."
    prompts += [chat(msg) + "<instruction>"] * a.samples
t = time.perf_counter()
sample(prompts, a.max_tokens, 1.0, 0.9, repetition_penalty=None)
gen_s = time.perf_counter() - t
t = time.perf_counter()
sample([chat(s) for s in seeds[: a.responses]], a.response_tokens, 0.6, 0.9)
resp_s = time.perf_counter() - t
print(json.dumps({"samples": len(prompts), "generate_s": round(gen_s, 2), "samples_per_min": round(len(prompts) / gen_s * 60, 1),
                  "responses": a.responses, "respond_s": round(resp_s, 2), "responses_per_min": round(a.responses / resp_s * 60, 1)}))
