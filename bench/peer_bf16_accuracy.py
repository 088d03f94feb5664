"""How far PyTorch's bf16 autocast moves per-token log-probs from float64, on the cases of
Tests/Fixtures/logprobs.json (made in float64 by Tests/Reference/make_model_fixtures.py): the
yardstick for the tolerance of the bf16 tests.

    python bench/peer_bf16_accuracy.py --model SmolLM2-135M-Instruct.Q4_1.gguf
"""
import argparse
import json
import os

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--fixture", default=os.path.join(os.path.dirname(__file__), "..", "Tests", "Fixtures", "logprobs.json"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    d, name = os.path.split(os.path.abspath(a.model))
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).eval()
    errors = []
    for c in json.load(open(a.fixture))["cases"]:
        p, q = c["prompt_ids"], c["completion_ids"]
        ids = torch.tensor([p + q])
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids).logits
        lp = torch.log_softmax(logits[0, len(p) - 1:-1].double(), dim=-1).gather(1, torch.tensor(q)[:, None])[:, 0]
        errors += [abs(x - y) for x, y in zip(lp.tolist(), c["logprobs"])]
    print(json.dumps({"tokens": len(errors), "max_abs_error": max(errors), "mean_abs_error": sum(errors) / len(errors)}))


if __name__ == "__main__":
    main()
