import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// A checkpoint of this project: a Hugging Face directory (config.json, model.safetensors with
/// Hugging Face names, tokenizer.json, tokenizer_config.json) that transformers loads as is,
/// plus, when training continues from it, optimizer.safetensors (AdamW moments, with the step
/// in its metadata) and trainer_state.json (schedule position, data cursor, RNG, settings).
/// The directory is written as DIR.partial and swapped into place only when complete.
public enum Checkpoint {
    public static func save(
        model: LlamaModel, tokenizer: BPETokenizer, chatTemplate: String?, optimizer: AdamW?,
        trainerState: JSONObject?, to dir: String, dtype: SafetensorsFile.DType = .f32
    ) throws(StreamError) {
        let staging = dir + ".partial"
        removeDirectory(staging)
        if mkdir(staging, 0o755) != 0 { throw .cannotCreate(path: staging, reason: String(cString: strerror(errno))) }
        let P = model.parameters
        var items: [SafetensorsWriter.Item] = []
        for e in P.entries { items.append(.init(name: e.name, shape: e.shape, data: P.pointer(e.offset))) }
        try SafetensorsWriter.write(items, to: staging + "/model.safetensors", dtype: dtype, metadata: ["format": "pt"])
        try writeJSON(configJSON(model.config, tokenizer: tokenizer, dtype: dtype), to: staging + "/config.json")
        try writeJSON(TokenizerJSON.export(tokenizer), to: staging + "/tokenizer.json")
        try writeJSON(tokenizerConfig(tokenizer, chatTemplate: chatTemplate), to: staging + "/tokenizer_config.json")
        if let optimizer {
            var moments: [SafetensorsWriter.Item] = []
            for e in P.entries {
                moments.append(.init(name: "exp_avg." + e.name, shape: e.shape, data: optimizer.m.pointer + e.offset))
                moments.append(.init(name: "exp_avg_sq." + e.name, shape: e.shape, data: optimizer.v.pointer + e.offset))
            }
            try SafetensorsWriter.write(moments, to: staging + "/optimizer.safetensors", dtype: .f32, metadata: ["step": String(optimizer.step)])
        }
        if let trainerState { try writeJSON(trainerState, to: staging + "/trainer_state.json") }
        // Swap into place: the old checkpoint is moved aside first, removed only afterwards.
        let previous = dir + ".previous"
        removeDirectory(previous)
        if access(dir, F_OK) == 0, rename(dir, previous) != 0 {
            throw .cannotCreate(path: dir, reason: "cannot move the old checkpoint aside: " + String(cString: strerror(errno)))
        }
        if rename(staging, dir) != 0 { throw .cannotCreate(path: dir, reason: "rename: " + String(cString: strerror(errno))) }
        OutputFile.syncDirectory(of: dir + "/.") // the checkpoint's own entries
        OutputFile.syncDirectory(of: dir) // its name in the parent
        removeDirectory(previous)
    }

    /// The AdamW state saved with a checkpoint, or nil when it has none.
    public static func loadOptimizer(dir: String, parameters P: LlamaParameters, hyper: AdamW.Hyperparameters) throws(CheckpointError) -> AdamW? {
        let path = dir + "/optimizer.safetensors"
        guard access(path, R_OK) == 0 else { return nil }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw .safetensors(error) }
        guard let stepText = file.metadata["step"], let step = Int(stepText), step >= 0 else { throw .malformed(path, "no step in the metadata") }
        let opt = AdamW(count: P.count, hyper: hyper)
        for e in P.entries {
            for (prefix, buffer) in [("exp_avg.", opt.m), ("exp_avg_sq.", opt.v)] {
                guard let t = file.tensors[prefix + e.name], t.shape == e.shape, t.dtype == .f32 else {
                    throw .malformed(path, "missing or mis-shaped \(prefix + e.name)")
                }
                file.read(t, into: buffer.pointer + e.offset)
            }
        }
        opt.restore(step: step)
        return opt
    }

    public static func trainerState(dir: String) throws(CheckpointError) -> JSONObject? {
        let path = dir + "/trainer_state.json"
        guard access(path, R_OK) == 0 else { return nil }
        return try HuggingFaceDirectory.readJSON(path)
    }

    static func configJSON(_ c: LlamaConfig, tokenizer: BPETokenizer, dtype: SafetensorsFile.DType) -> JSONObject {
        func n(_ x: Int) -> JSONValue { .number(JSONNumber(x)) }
        func d(_ x: Double) -> JSONValue { JSONNumber(x).map(JSONValue.number) ?? .null }
        var o = JSONObject()
        o["architectures"] = .array([.string(c.architecture == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM")])
        o["model_type"] = .string(c.architecture)
        o["hidden_size"] = n(c.hiddenSize)
        o["intermediate_size"] = n(c.intermediateSize)
        o["num_hidden_layers"] = n(c.numHiddenLayers)
        o["num_attention_heads"] = n(c.numAttentionHeads)
        o["num_key_value_heads"] = n(c.numKeyValueHeads)
        o["head_dim"] = n(c.headDim)
        o["vocab_size"] = n(c.vocabSize)
        o["max_position_embeddings"] = n(c.maxPositionEmbeddings)
        o["rms_norm_eps"] = d(c.rmsNormEps)
        o["rope_theta"] = d(c.ropeTheta)
        switch c.ropeScaling {
        case nil: o["rope_scaling"] = .null
        case let .linear(factor):
            var r = JSONObject()
            r["rope_type"] = .string("linear")
            r["factor"] = d(factor)
            o["rope_scaling"] = .object(r)
        case let .llama3(factor, low, high, original):
            var r = JSONObject()
            r["rope_type"] = .string("llama3")
            r["factor"] = d(factor)
            r["low_freq_factor"] = d(low)
            r["high_freq_factor"] = d(high)
            r["original_max_position_embeddings"] = n(original)
            o["rope_scaling"] = .object(r)
        }
        o["tie_word_embeddings"] = .bool(c.tieWordEmbeddings)
        o["hidden_act"] = .string("silu")
        if c.architecture != "qwen2" {
            o["attention_bias"] = .bool(false)
            o["mlp_bias"] = .bool(false)
        }
        o["bos_token_id"] = tokenizer.bos.map { n(Int($0)) } ?? .null
        o["eos_token_id"] = tokenizer.eos.map { n(Int($0)) } ?? .null
        o["pad_token_id"] = c.padTokenId.map(n) ?? .null
        o["torch_dtype"] = .string(dtype == .bf16 ? "bfloat16" : "float32")
        return o
    }

    static func tokenizerConfig(_ t: BPETokenizer, chatTemplate: String?) -> JSONObject {
        var o = JSONObject()
        o["tokenizer_class"] = .string("PreTrainedTokenizerFast")
        if let b = t.bos { o["bos_token"] = .string(t.vocabulary[Int(b)]) }
        if let e = t.eos { o["eos_token"] = .string(t.vocabulary[Int(e)]) }
        if let p = t.pad { o["pad_token"] = .string(t.vocabulary[Int(p)]) }
        o["add_bos_token"] = .bool(t.addBOS)
        o["clean_up_tokenization_spaces"] = .bool(false)
        if let chatTemplate { o["chat_template"] = .string(chatTemplate) }
        return o
    }

    static func writeJSON(_ o: JSONObject, to path: String) throws(StreamError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw .cannotCreate(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        JSONWriter.append(o, to: &bytes)
        bytes.append(0x0A)
        let sink = FileDescriptorSink(fd: fd, name: path)
        try sink.write(bytes, count: bytes.count)
        try sink.sync()
    }

    /// Removes a directory of plain files (a checkpoint), if it exists.
    static func removeDirectory(_ path: String) {
        guard let d = opendir(path) else { return }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            unlink(path + "/" + name)
        }
        closedir(d)
        rmdir(path)
    }
}
