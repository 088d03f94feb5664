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
- llama2/  Llama 2 / TinyLlama style: a SentencePiece BPE model trained here by `sentencepiece`
           (byte fallback, digits split), written as TinyLlama's tokenizer.json (normalizer
           Prepend + Replace, no pre-tokenizer, byte_fallback, <unk>/<s>/</s>), BOS added by
           tokenizer_config.json, Llama 2 [INST] template, float32 weights. Beside it:
           metaspace/tokenizer.json, the same vocabulary as transformers' converter writes it
           today (Metaspace pre-tokenizer, prepend_scheme "first"), and tiny-llama2.gguf, the same
           model and tokenizer as llama.cpp stores them (tokenizer.ggml.model "llama": pieces,
           scores and token types, no merges; q/k rows permuted), written with the `gguf` package.

chat-formats.json: the built-in chat formats' templates rendered by transformers.

Beside each, expected.json holds token ids of a few texts (for llama2 also of SP_TEXTS, with
the metaspace variant's ids and the decoded texts), per-token log-probabilities of
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

import sentencepiece
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
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
# Where SentencePiece-style tokenizers differ: spaces at the start and in runs, newlines, tabs, non-Latin
# scripts, emoji, characters without a piece (byte fallback), special tokens inside text.
SP_TEXTS = [" one leading space", "   three leading", "trailing spaces  ", "tab\there\tand\tthere", "new\nline\n\n\nend",
            "Ελληνικά и русский текст", "日本語のテキスト", "emoji 🦙🚀 done", "rare ǂ ʬ ꙮ signs", "<s>Hello</s> world",
            "x</s>y z", " ", "a  b   c", "▁already escaped", "Write 3 tips for 2024."]
LLAMA2_TEMPLATE = ("{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
                   "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
                   "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
                   "{% if loop.index0 == 0 and system_message != false %}"
                   "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
                   "{% else %}{% set content = message['content'] %}{% endif %}"
                   "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
                   "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}")
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


def train_sentencepiece(root, out):
    """A SentencePiece BPE model with Llama's settings, and its tokenizer.json in two layouts."""
    from tokenizers import AddedToken, normalizers
    from transformers.convert_slow_tokenizer import SpmConverter, import_protobuf
    work = os.path.join(out, "sp-work")
    os.makedirs(work, exist_ok=True)
    text = os.path.join(work, "corpus.txt")
    with open(text, "w", encoding="utf-8") as f:
        for t in corpus(root):
            if t:
                f.write(t.replace("\n", " ") + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(work, "sp"), vocab_size=1000, hard_vocab_limit=False, model_type="bpe", byte_fallback=True,
        character_coverage=0.9995, split_digits=True, allow_whitespace_only_pieces=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    sp = sentencepiece.SentencePieceProcessor(model_file=os.path.join(work, "sp.model"))
    proto = import_protobuf().ModelProto()
    with open(os.path.join(work, "sp.model"), "rb") as f:
        proto.ParseFromString(f.read())
    vocab = {p.piece: i for i, p in enumerate(proto.pieces)}
    specials = [AddedToken(t, normalized=False, special=True) for t in ("<unk>", "<s>", "</s>")]
    # transformers' converter as it writes Llama tokenizers today (not legacy: Metaspace, "first").
    metaspace = SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=False)
    metaspace.add_special_tokens(specials)
    merges = json.loads(metaspace.to_str())["model"]["merges"]
    # TinyLlama's and Llama 2's layout: the same vocabulary and merges, a Prepend + Replace normalizer.
    legacy = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m) for m in merges], unk_token="<unk>", fuse_unk=True,
                                  byte_fallback=True))
    legacy.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    legacy.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                        decoders.Strip(content=" ", left=1, right=0)])
    legacy.add_special_tokens(specials)
    legacy.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    # The converted tokenizer encodes as SentencePiece itself does (texts without special tokens).
    for t in TEXTS + SP_TEXTS:
        if "<" not in t:
            assert legacy.encode(t, add_special_tokens=False).ids == sp.encode(t), t
    return legacy, metaspace, proto


def write_llama2_gguf(path, model, config, proto, template):
    """The model and tokenizer as llama.cpp's converter stores a Llama 2 checkpoint."""
    import gguf
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("tiny-llama2")
    w.add_block_count(config.num_hidden_layers)
    w.add_context_length(config.max_position_embeddings)
    w.add_embedding_length(config.hidden_size)
    w.add_feed_forward_length(config.intermediate_size)
    w.add_head_count(config.num_attention_heads)
    w.add_head_count_kv(config.num_key_value_heads)
    w.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    w.add_rope_freq_base(10000.0)  # config.rope_parameters in transformers 5
    w.add_layer_norm_rms_eps(config.rms_norm_eps)
    w.add_file_type(0)
    w.add_tokenizer_model("llama")
    w.add_token_list([p.piece.encode("utf-8") for p in proto.pieces])
    w.add_token_scores([p.score for p in proto.pieces])
    # SentencePiece piece types are llama.cpp's token types (1 normal, 2 unknown, 3 control, 6 byte).
    w.add_token_types([p.type for p in proto.pieces])
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.add_chat_template(template)
    heads, kv = config.num_attention_heads, config.num_key_value_heads

    def permute(t, n):
        return t.reshape(n, 2, t.shape[0] // n // 2, *t.shape[1:]).swapaxes(1, 2).reshape(t.shape)

    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
             "lm_head.weight": "output.weight"}
    parts = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    for name, t in model.state_dict().items():
        a = t.to(torch.float32).numpy()
        if name in names:
            w.add_tensor(names[name], a)
            continue
        layer, rest = name[len("model.layers."):].split(".", 1)
        part = rest.rsplit(".", 1)[0]
        if part == "self_attn.q_proj":
            a = permute(a, heads)
        elif part == "self_attn.k_proj":
            a = permute(a, kv)
        w.add_tensor(f"blk.{layer}.{parts[part]}.weight", a)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def build_llama2(root, out):
    os.makedirs(out, exist_ok=True)
    tok, metaspace, proto = train_sentencepiece(root, out)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = LLAMA2_TEMPLATE
    fast.save_pretrained(out)
    # What TinyLlama's tokenizer_config.json says: BOS before encoded text, no EOS.
    cfg_path = os.path.join(out, "tokenizer_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    cfg.update({"add_bos_token": True, "add_eos_token": False, "legacy": True})
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    meta_dir = os.path.join(out, "metaspace")
    os.makedirs(meta_dir, exist_ok=True)
    metaspace.save(os.path.join(meta_dir, "tokenizer.json"))
    with open(os.path.join(meta_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "add_bos_token": True, "legacy": False}, f, indent=2)

    torch.manual_seed(4)
    config = LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False,
        bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.15) if p.dim() == 2 else p.uniform_(0.5, 1.5)
    model.save_pretrained(out, safe_serialization=True)
    write_llama2_gguf(os.path.join(out, "tiny-llama2.gguf"), model, config, proto, LLAMA2_TEMPLATE)

    ref64 = LlamaForCausalLM.from_pretrained(out, dtype=torch.float64).eval()
    ref32 = LlamaForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    expected = {"source": "transformers LlamaForCausalLM, tokenizers (see make_tiny_hf_fixtures.py)", "tokens": [],
                "logprobs": [], "greedy": []}
    for t in TEXTS + SP_TEXTS:
        ids = tok.encode(t, add_special_tokens=False).ids
        expected["tokens"].append({"text": t, "ids": ids, "metaspace_ids": metaspace.encode(t, add_special_tokens=False).ids,
                                   "with_bos": tok.encode(t).ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    for user, answer in PAIRS:
        prompt = fast.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)
        full = fast.apply_chat_template([{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
                                        tokenize=False)
        # The completion's ids are those that follow the prompt's in the whole conversation's.
        p = tok.encode(prompt, add_special_tokens=False).ids
        ids = tok.encode(full, add_special_tokens=False).ids
        assert ids[:len(p)] == p, (prompt, full)
        c = ids[len(p):]
        with torch.no_grad():
            lp = torch.log_softmax(ref64(torch.tensor([p + c])).logits[0], dim=-1)
        expected["logprobs"].append({"user": user, "prompt": prompt, "completion": full[len(prompt):], "prompt_ids": p,
                                     "completion_ids": c, "logprobs": [lp[len(p) + j - 1, c[j]].item() for j in range(len(c))]})
        seq = list(p)
        with torch.no_grad():
            for _ in range(12):
                seq.append(int(ref32(torch.tensor([seq])).logits[0, -1].argmax()))
        expected["greedy"].append({"prompt_ids": p, "new_ids": seq[len(p):],
                                   "text": tok.decode(seq[len(p):], skip_special_tokens=True)})
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    import shutil
    shutil.rmtree(os.path.join(out, "sp-work"))


# The built-in chat formats' templates (ChatFormat.jinja in Sources/MICore/Tokenizer/ChatFormat.swift
# writes the same text; the tests check both that and the rendering).
BUILTIN_TEMPLATES = {
    "chatml": ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
    "llama2": ("{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
               "{% set turns = messages[1:] %}{% else %}{% set system = false %}{% set turns = messages %}{% endif %}"
               "{% for message in turns %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' }}"
               "{% if loop.first and system != false %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}"
               "{{ message['content'].strip() + ' [/INST]' }}{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}"
               "{% endif %}{% endfor %}"),
    "llama3": ("{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
               "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
               "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"),
    "zephyr": ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
               "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"),
}


def chat_format_references(path, fixtures):
    """Each built-in template rendered by transformers: the prompt (with and without a system
    message) and the whole conversation with the answer."""
    from transformers import AutoTokenizer
    tokenizers_by_bos = {"<s>": AutoTokenizer.from_pretrained(os.path.join(fixtures, "llama2")),
                         "<|begin_of_text|>": AutoTokenizer.from_pretrained(os.path.join(fixtures, "llama3"))}
    user, answer, system = "Name a colour.", "Blue.", "Be brief."
    out = {}
    for name, template in BUILTIN_TEMPLATES.items():
        tok = tokenizers_by_bos["<|begin_of_text|>" if name == "llama3" else "<s>"]

        def render(messages, generation):
            return tok.apply_chat_template(messages, chat_template=template, tokenize=False, add_generation_prompt=generation)

        u = [{"role": "user", "content": user}]
        out[name] = {"template": template, "bos": tok.bos_token, "eos": tok.eos_token, "user": user, "answer": answer,
                     "system": system, "prompt": render(u, True),
                     "prompt_with_system": render([{"role": "system", "content": system}] + u, True),
                     "conversation": render(u + [{"role": "assistant", "content": answer}], False)}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", choices=["smollm", "llama3", "qwen2", "llama2"], help="make one of the fixtures")
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for kind in [args.only] if args.only else ("smollm", "llama3", "qwen2", "llama2"):
        if kind == "llama2":
            build_llama2(root, os.path.join(args.out, kind))
        else:
            build(root, os.path.join(args.out, kind), kind)
    chat_format_references(os.path.join(args.out, "chat-formats.json"), args.out)


if __name__ == "__main__":
    main()
