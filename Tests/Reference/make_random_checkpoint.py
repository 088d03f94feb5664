"""A random-weight checkpoint of TinyLlama-1.1B's shape in bfloat16, for the memory check in
BENCHMARKS.md (never used by `make test`; nothing is downloaded):

    python Tests/Reference/make_random_checkpoint.py --out /tmp/tinyllama-shape

TinyLlama-1.1B's sizes (22 layers, hidden 2048, MLP 5632, 32 heads, 4 KV heads, vocab 32000)
with the Llama 2 fixture's SentencePiece tokenizer and template (Tests/Fixtures/tiny-hf/llama2;
its 1,000 tokens are the first ids of the 32,000-row embedding).
"""
import argparse
import os
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    fixture = os.path.join(root, "Tests", "Fixtures", "tiny-hf", "llama2")
    config = LlamaConfig(vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                         num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048, rms_norm_eps=1e-5,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, dtype="bfloat16")
    torch.manual_seed(0)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() == 2 else p.fill_(1.0)
    os.makedirs(args.out, exist_ok=True)
    model.save_pretrained(args.out, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        shutil.copy(os.path.join(fixture, f), args.out)
    print(sum(p.numel() for p in model.parameters()), "parameters")


if __name__ == "__main__":
    main()
