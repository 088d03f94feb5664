"""The reference algorithm of local data influence in PyTorch + transformers, timed per record,
for comparison with mi-probe on the same student, records and reference set:

    python bench/peer_probe.py --student DIR --reference REF.jsonl --records RECORDS.jsonl[.gz] [--count 6 --lr 5e-6]

Per record, as the paper's code does but without reloading from disk: restore the student's
weights from a copy in memory and start a fresh AdamW (betas 0.9/0.999, eps 1e-8, no weight
decay), one step on the record alone (mean NLL over its response tokens), then the reference
loss: the mean over reference records of each one's mean response NLL (batches of 8, float32,
torch.set_num_threads(2)). Prints one JSON object: seconds per record (median), the records'
influences, and versions.
"""
import argparse
import gzip
import json
import statistics
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def read(path):
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
        return [json.loads(l) for l in f if l.strip()]


def example(tok, r):
    user = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
    prompt = tok.apply_chat_template([{"role": "user", "content": user}], add_generation_prompt=True, tokenize=False)
    full = tok.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": r["response"]}], tokenize=False)
    p, f = tok(prompt)["input_ids"], tok(full)["input_ids"]
    return torch.tensor(f), len(p)


def mean_nll(model, batch):
    """Each example's mean NLL over its response tokens."""
    n = max(len(ids) for ids, _ in batch)
    ids = torch.zeros(len(batch), n, dtype=torch.long)
    mask = torch.zeros(len(batch), n)
    attn = torch.zeros(len(batch), n, dtype=torch.long)
    for i, (x, start) in enumerate(batch):
        ids[i, : len(x)] = x
        attn[i, : len(x)] = 1
        mask[i, start : len(x)] = 1
    logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1].float()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
    m = mask[:, 1:]
    return -(lp * m).sum(1) / m.sum(1).clamp(min=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--records", required=True)
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--lr", type=float, default=5e-6)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.student)
    model = AutoModelForCausalLM.from_pretrained(a.student, torch_dtype=torch.float32)
    refs = [example(tok, r) for r in read(a.reference)]
    records = [example(tok, r) for r in read(a.records)[: a.count]]
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def reference_loss():
        with torch.no_grad():
            return torch.cat([mean_nll(model, refs[i : i + 8]) for i in range(0, len(refs), 8)]).mean().item()

    before = reference_loss()
    times, influences = [], []
    for rec in records:
        t = time.perf_counter()
        model.load_state_dict(saved)
        opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
        mean_nll(model, [rec]).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        influences.append(before - reference_loss())
        times.append(time.perf_counter() - t)
    print(json.dumps({"seconds_per_record": statistics.median(times), "records": len(records), "reference": len(refs),
                      "influences": influences, "torch_version": torch.__version__,
                      "transformers_version": transformers.__version__, "threads": a.threads}))


if __name__ == "__main__":
    main()
