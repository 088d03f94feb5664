import MIStream

/// What `mi-model info` reports about a checkpoint, as a JSON object.
public enum ModelSummary {
    public static func describe(gguf: GGUFFile) throws(GGUFError) -> JSONObject {
        let config = try LlamaConfig(gguf: gguf)
        var o = JSONObject()
        o["path"] = .string(gguf.path)
        o["format"] = .string("gguf")
        o["gguf_version"] = .number(JSONNumber(Int(gguf.version)))
        if let name = gguf.string("general.name") { o["name"] = .string(name) }
        addSizes(config, parameters: gguf.tensors.reduce(0) { $0 + $1.elementCount }, to: &o)
        var types = JSONObject()
        for t in gguf.tensors {
            let n = types[t.type.name].flatMap { if case let .number(n) = $0 { return n.int } else { return nil } } ?? 0
            types[t.type.name] = .number(JSONNumber(n + 1))
        }
        o["tensor_types"] = .object(types)

        var tok = JSONObject()
        if let m = gguf.string("tokenizer.ggml.model") { tok["model"] = .string(m) }
        if let p = gguf.string("tokenizer.ggml.pre") { tok["pre_tokenizer"] = .string(p) }
        if let n = gguf.metadata["tokenizer.ggml.tokens"]?.array?.count { tok["tokens"] = .number(JSONNumber(n)) }
        if let n = gguf.metadata["tokenizer.ggml.merges"]?.array?.count { tok["merges"] = .number(JSONNumber(n)) }
        for (key, name) in [("bos_token_id", "bos_id"), ("eos_token_id", "eos_id"), ("padding_token_id", "pad_id"), ("unknown_token_id", "unk_id")] {
            if let v = gguf.int("tokenizer.ggml.\(key)") { tok[name] = .number(JSONNumber(v)) }
        }
        o["tokenizer"] = .object(tok)
        o["chat_format"] = .string(chatFormat(template: gguf.string("tokenizer.chat_template")))
        return o
    }

    /// Description of a Hugging Face directory (or a checkpoint of this project).
    public static func describe(loaded: LoadedModel) -> JSONObject {
        let c = loaded.model.config
        var o = JSONObject()
        o["path"] = .string(loaded.path)
        o["format"] = .string("huggingface")
        addSizes(c, parameters: loaded.model.parameters.count, to: &o)
        var tok = JSONObject()
        if let sp = loaded.tokenizer.sentencePiece {
            tok["model"] = .string("sentencepiece-bpe")
            tok["dummy_prefix"] = .string(sp.prefix.rawValue)
            tok["byte_fallback"] = .bool(sp.byteFallback)
        } else {
            tok["model"] = .string("bpe")
            tok["pre_tokenizer"] = .string(loaded.tokenizer.preTokenizer.rawValue)
        }
        tok["tokens"] = .number(JSONNumber(loaded.tokenizer.count))
        for (name, id) in [("bos_id", loaded.tokenizer.bos), ("eos_id", loaded.tokenizer.eos), ("pad_id", loaded.tokenizer.pad)] {
            if let id { tok[name] = .number(JSONNumber(Int(id))) }
        }
        o["tokenizer"] = .object(tok)
        o["chat_format"] = .string(loaded.chat?.style.rawValue ?? "none")
        return o
    }

    static func addSizes(_ c: LlamaConfig, parameters: Int, to o: inout JSONObject) {
        func n(_ x: Int) -> JSONValue { .number(JSONNumber(x)) }
        o["architecture"] = .string(c.architecture)
        o["parameters"] = n(parameters)
        o["layers"] = n(c.numHiddenLayers)
        o["hidden_size"] = n(c.hiddenSize)
        o["intermediate_size"] = n(c.intermediateSize)
        o["attention_heads"] = n(c.numAttentionHeads)
        o["key_value_heads"] = n(c.numKeyValueHeads)
        o["head_dim"] = n(c.headDim)
        o["vocab_size"] = n(c.vocabSize)
        o["context_length"] = n(c.maxPositionEmbeddings)
        o["rope_theta"] = JSONNumber(c.ropeTheta).map { .number($0) } ?? .null
        o["rms_norm_eps"] = JSONNumber(c.rmsNormEps).map { .number($0) } ?? .null
        o["tie_word_embeddings"] = .bool(c.tieWordEmbeddings)
    }

    /// Recognises the chat template family from its markers.
    public static func chatFormat(template: String?) -> String {
        guard let t = template else { return "none" }
        if t.contains("<|im_start|>") { return "chatml" }
        if t.contains("<|start_header_id|>") { return "llama3" }
        return "unknown"
    }
}
