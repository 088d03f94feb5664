"""Training fixtures for the model core, from PyTorch in float64.

    python Tests/Reference/make_training_fixtures.py --gguf SmolLM2-135M-Instruct.Q4_1.gguf --out Tests/Fixtures [--only dpo|influence]

Run by hand in a venv with Tests/Reference/requirements.txt (never by `make test`). The model is
transformers' Llama loaded from the GGUF (dequantised to float32, then float64). Writes:

- training.json  for two chat-formatted (user, response) examples:
    batch:  the mean completion loss of both together (mean over all completion tokens, the
            Hugging Face convention), each example's mean, and the L2 norm of every parameter's
            gradient (Hugging Face names; the tied embedding's gradient includes the head's);
    sft:    torch.optim.AdamW(lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0), batch size 1,
            the two examples in order (two steps); then each example's mean completion loss and
            completion log-probability sum.
- dpo.json       two preference pairs, one step of the sigmoid DPO loss (beta 0.1, batch of both
                 pairs, reference = the starting model) with the same AdamW settings; the loss of
                 that step and every completion's log-probability sum afterwards; under "rpo" the
                 same from a fresh copy with the chosen completions' NLL per token added (weight 1).
- influence.json local data influence of four records of data/reference.jsonl (ref-010..ref-013)
                 on a reference set of three (ref-001..ref-003): one torch.optim.AdamW step (fresh
                 state, lr 1e-5, betas 0.9/0.999, eps 1e-8, no weight decay) on the record alone,
                 then the mean over reference records of each one's mean completion NLL, before
                 minus after; the model is restored between records.
- adamw.json     torch.optim.AdamW on a small float32 tensor with weight decay: parameters after
                 each of three steps with given gradients.
"""
import argparse
import json
import os

import numpy as np
import torch
from gguf import GGUFReader
from transformers import AutoModelForCausalLM

from make_model_fixtures import chat_prompt, reference_tokenizer

EXAMPLES = [
    ("Give me a tip for staying focused.", "Work in short blocks of 25 minutes and put your phone in another room."),
    ("What is the boiling point of water?", "At sea level, water boils at 100 degrees Celsius (212 degrees Fahrenheit)."),
]

DPO_PAIRS = [
    ("Suggest a name for a pet goldfish.", "How about Bubbles? It is cheerful and easy to say.", "Goldfish do not need names."),
    ("Is 17 a prime number?", "Yes. 17 has no divisors other than 1 and itself.", "No, 17 is divisible by 3."),
]


def tokenizer_from_gguf(path):
    return reference_tokenizer(GGUFReader(path))[0]


def encode(tok, user, response):
    p = tok.encode(chat_prompt(user), add_special_tokens=False).ids
    c = tok.encode(response + "<|im_end|>", add_special_tokens=False).ids
    return p, c


def losses(model, batch):
    """Per-example (sum, count) of completion NLL and the batch mean, differentiable."""
    total, count, per = 0, 0, []
    for p, c in batch:
        logits = model(torch.tensor([p + c])).logits[0]
        lp = torch.log_softmax(logits, dim=-1)
        tok_lp = lp[torch.arange(len(p) - 1, len(p) + len(c) - 1), torch.tensor(c)]
        per.append((-tok_lp.sum(), len(c)))
        total = total + (-tok_lp.sum())
        count += len(c)
    return total / count, per


def dpo_step(d, name, enc, beta, rpo_alpha):
    """One AdamW step (lr 1e-5) of the sigmoid DPO loss, averaged over the pairs, plus rpo_alpha
    times the chosen completions' NLL per token over all chosen tokens (TRL's rpo_alpha), on a
    fresh copy of the model; the reference log-probability sums, the step's loss and the sums after."""
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).double()

    def seq_logprob(m, p, c):
        lp = torch.log_softmax(m(torch.tensor([p + c])).logits[0], dim=-1)
        return lp[torch.arange(len(p) - 1, len(p) + len(c) - 1), torch.tensor(c)].sum()

    with torch.no_grad():
        ref = [(seq_logprob(model, p, c).item(), seq_logprob(model, p, r).item()) for p, c, r in enc]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    per_pair, chosen_nll, chosen_tokens = [], 0, 0
    for (p, c, r), (rc, rr) in zip(enc, ref):
        lc = seq_logprob(model, p, c)
        z = beta * ((lc - rc) - (seq_logprob(model, p, r) - rr))
        per_pair.append(-torch.nn.functional.logsigmoid(z))
        chosen_nll = chosen_nll - lc
        chosen_tokens += len(c)
    loss = torch.stack(per_pair).mean() + rpo_alpha * chosen_nll / chosen_tokens
    opt.zero_grad()
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = [(seq_logprob(model, p, c).item(), seq_logprob(model, p, r).item()) for p, c, r in enc]
    return {"reference": ref, "step_loss": loss.item(), "after": after}


def dpo_fixture(args, d, name, tok):
    # DPO: one step on two pairs from a fresh copy of the model; then the same step with the
    # chosen completions' NLL per token added (RPO, TRL's rpo_alpha).
    pairs = [(u, c, r) for u, c, r in DPO_PAIRS]
    enc = [(encode(tok, u, c)[0], encode(tok, u, c)[1], encode(tok, u, r)[1]) for u, c, r in pairs]
    beta, rpo_alpha = 0.1, 1.0
    plain = dpo_step(d, name, enc, beta, 0.0)
    rpo = dpo_step(d, name, enc, beta, rpo_alpha)
    with open(os.path.join(args.out, "dpo.json"), "w") as f:
        json.dump({"source": "transformers LlamaForCausalLM from the GGUF, float64; sigmoid DPO as in TRL; torch.optim.AdamW",
                   "beta": beta, "lr": 1e-5,
                   "pairs": [{"prompt": u, "chosen": c, "rejected": r} for u, c, r in pairs],
                   "reference": [{"chosen": a, "rejected": b} for a, b in plain["reference"]],
                   "step_loss": plain["step_loss"],
                   "after": [{"chosen": a, "rejected": b} for a, b in plain["after"]],
                   "rpo": {"nll_weight": rpo_alpha, "step_loss": rpo["step_loss"],
                           "after": [{"chosen": a, "rejected": b} for a, b in rpo["after"]]}}, f, indent=1)
        f.write("\n")


def influence_fixture(args, d, name, tok):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "data", "reference.jsonl")) as f:
        recs = {r["id"]: r for r in map(json.loads, f)}
    refs = [encode(tok, recs[f"ref-00{i}"]["instruction"], recs[f"ref-00{i}"]["response"]) for i in (1, 2, 3)]
    cands = [f"ref-0{i}" for i in (10, 11, 12, 13)]
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).double()

    def ref_loss():
        with torch.no_grad():
            _, per = None, []
            total = 0.0
            for p, c in refs:
                _, pe = losses(model, [(p, c)])
                s, n = pe[0]
                total += (s / n).item()
            return total / len(refs)

    before = ref_loss()
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    out = []
    for cid in cands:
        p, c = encode(tok, recs[cid]["instruction"], recs[cid]["response"])
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        opt.zero_grad()
        loss, _ = losses(model, [(p, c)])
        loss.backward()
        opt.step()
        after = ref_loss()
        out.append({"id": cid, "influence": before - after, "ref_loss_after": after})
        model.load_state_dict(saved)
    with open(os.path.join(args.out, "influence.json"), "w") as f:
        json.dump({"source": "transformers LlamaForCausalLM from the GGUF, float64; torch.optim.AdamW", "lr": 1e-5,
                   "reference_ids": ["ref-001", "ref-002", "ref-003"], "ref_loss_before": before, "records": out}, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["influence", "dpo"], default=None)
    args = ap.parse_args()
    if args.only is not None:
        d, name = os.path.split(os.path.abspath(args.gguf))
        {"influence": influence_fixture, "dpo": dpo_fixture}[args.only](args, d, name, tokenizer_from_gguf(args.gguf))
        return
    d, name = os.path.split(os.path.abspath(args.gguf))
    tok = tokenizer_from_gguf(args.gguf)
    batch = [encode(tok, u, r) for u, r in EXAMPLES]
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, dtype=torch.float32).double()
    model.train()  # no dropout in Llama; train() only to be explicit

    mean, per = losses(model, batch)
    model.zero_grad()
    mean.backward()
    norms = {n: p.grad.norm().item() for n, p in model.named_parameters() if p.grad is not None}
    out = {
        "source": "transformers LlamaForCausalLM from the GGUF, float64; torch.optim.AdamW",
        "examples": [{"user": u, "response": r, "prompt_ids": p, "completion_ids": c} for (u, r), (p, c) in zip(EXAMPLES, batch)],
        "batch": {"mean_loss": mean.item(), "example_mean_loss": [(s / n).item() for s, n in per], "grad_norms": norms},
    }

    model.zero_grad()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    for example in batch:
        opt.zero_grad()
        loss, _ = losses(model, [example])
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, per = losses(model, batch)
    out["sft"] = {"lr": 1e-5, "example_mean_loss": [(s / n).item() for s, n in per], "example_logprob_sum": [(-s).item() for s, n in per]}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    dpo_fixture(args, d, name, tok)
    influence_fixture(args, d, name, tok)

    # AdamW alone, float32, with weight decay: three steps of given gradients.
    rng = np.random.default_rng(7)
    p0 = rng.standard_normal(16).astype(np.float32)
    grads = [rng.standard_normal(16).astype(np.float32) * s for s in (1.0, 0.01, 3.0)]
    param = torch.nn.Parameter(torch.tensor(p0))
    opt = torch.optim.AdamW([param], lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    steps = []
    for g in grads:
        param.grad = torch.tensor(g)
        opt.step()
        steps.append([float(x) for x in param.detach().numpy()])
    with open(os.path.join(args.out, "adamw.json"), "w") as f:
        json.dump({"source": f"torch {torch.__version__} torch.optim.AdamW (float32)", "lr": 1e-3, "beta1": 0.9, "beta2": 0.95,
                   "eps": 1e-8, "weight_decay": 0.1, "initial": [float(x) for x in p0],
                   "gradients": [[float(x) for x in g] for g in grads], "after_each_step": steps}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
