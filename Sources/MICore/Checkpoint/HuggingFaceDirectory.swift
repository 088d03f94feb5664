import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// A Hugging Face model directory: config.json, model.safetensors (or shards listed in
/// model.safetensors.index.json), tokenizer.json and tokenizer_config.json.
public struct HuggingFaceDirectory {
    public let path: String
    public let config: LlamaConfig
    let root: JSONObject

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func readJSON(_ path: String) throws(CheckpointError) -> JSONObject {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .cannotOpen(path) }
        do {
            guard case let .object(o) = try file.withBytes({ try JSONParser(maxDepth: 64).parse($0) }) else {
                throw CheckpointError.malformed(path, "not a JSON object")
            }
            return o
        } catch let e as JSONParser.Failure {
            throw .malformed(path, "\(e.message) at byte \(e.offset)")
        } catch {
            throw error as! CheckpointError
        }
    }

    public init(path: String) throws(CheckpointError) {
        self.path = path
        let configPath = path + "/config.json"
        root = try Self.readJSON(configPath)
        config = try LlamaConfig(huggingFace: root, path: configPath)
    }

    /// The safetensors files holding the weights.
    func weightFiles() throws(CheckpointError) -> [String] {
        let single = path + "/model.safetensors"
        if access(single, R_OK) == 0 { return [single] }
        let indexPath = path + "/model.safetensors.index.json"
        guard access(indexPath, R_OK) == 0 else { throw .malformed(path, "no model.safetensors or model.safetensors.index.json") }
        let index = try Self.readJSON(indexPath)
        guard case let .object(map)? = index["weight_map"] else { throw .malformed(indexPath, "no weight_map object") }
        var files: [String] = []
        for m in map.members {
            guard case let .string(f) = m.value, !f.contains("/") else { throw .malformed(indexPath, "weight_map[\(m.key)] is not a file name") }
            if !files.contains(f) { files.append(f) }
        }
        return files.map { path + "/" + $0 }
    }

    public func loadParameters() throws(CheckpointError) -> LlamaParameters {
        let params = LlamaParameters(config: config)
        var found: [String: (SafetensorsFile, SafetensorsFile.Tensor)] = [:]
        for f in try weightFiles() {
            let st: SafetensorsFile
            do { st = try SafetensorsFile(path: f) } catch { throw .safetensors(error) }
            for (name, t) in st.tensors {
                if found[name] != nil { throw .malformed(f, "tensor \(name) appears in more than one file") }
                found[name] = (st, t)
            }
        }
        for e in params.entries {
            guard let (file, t) = found[e.name] else { throw .malformed(path, "missing tensor \(e.name)") }
            guard t.shape == e.shape else { throw .malformed(file.path, "tensor \(e.name) has shape \(t.shape), expected \(e.shape)") }
            file.read(t, into: params.pointer(e.offset))
        }
        return params
    }

    public func loadTokenizer() throws(CheckpointError) -> (BPETokenizer, String?) {
        let tokPath = path + "/tokenizer.json"
        let tok = try Self.readJSON(tokPath)
        var cfg = JSONObject()
        if access(path + "/tokenizer_config.json", R_OK) == 0 { cfg = try Self.readJSON(path + "/tokenizer_config.json") }
        // transformers 5 keeps the chat template in its own file.
        let templatePath = path + "/chat_template.jinja"
        if cfg["chat_template"] == nil, access(templatePath, R_OK) == 0 {
            let text = (try? MappedFile(path: templatePath))?.withBytes { bytes in
                UTF8Check.firstInvalidByte(bytes) == nil ? String(decoding: bytes, as: UTF8.self) : nil
            }
            guard let text else { throw .malformed(templatePath, "not UTF-8 text") }
            cfg["chat_template"] = .string(text)
        }
        return try TokenizerJSON.load(tok, config: cfg, path: tokPath)
    }
}

public enum CheckpointError: StageError, Equatable {
    case cannotOpen(String)
    case malformed(String, String)
    case unsupported(String, String)
    case safetensors(SafetensorsError)

    public var exitStatus: ExitStatus { if case .cannotOpen = self { return .noInput } else { return .dataError } }

    public var description: String {
        switch self {
        case let .cannotOpen(p): return "\(p): cannot open"
        case let .malformed(p, m): return "\(p): \(m)"
        case let .unsupported(p, m): return "\(p): unsupported: \(m)"
        case let .safetensors(e): return e.description
        }
    }
}

extension LlamaConfig {
    /// Reads a Hugging Face config.json (LlamaForCausalLM).
    public init(huggingFace o: JSONObject, path: String) throws(CheckpointError) {
        func int(_ k: String, default d: Int? = nil) throws(CheckpointError) -> Int {
            guard let v = o[k] else {
                if let d { return d }
                throw .malformed(path, "missing \(k)")
            }
            guard case let .number(n) = v, let i = n.int, i > 0 else { throw .malformed(path, "\(k) must be a positive integer") }
            return i
        }
        func double(_ k: String, default d: Double) throws(CheckpointError) -> Double {
            guard let v = o[k], v != .null else { return d }
            guard case let .number(n) = v else { throw .malformed(path, "\(k) must be a number") }
            return n.double
        }
        let type = (try? o.string("model_type")) ?? ""
        guard Self.architectures.contains(type) else {
            throw .unsupported(path, "model_type '\(type)' (supported: \(Self.architectures.sorted().joined(separator: ", ")))")
        }
        architecture = type
        hiddenSize = try int("hidden_size")
        intermediateSize = try int("intermediate_size")
        numHiddenLayers = try int("num_hidden_layers")
        numAttentionHeads = try int("num_attention_heads")
        numKeyValueHeads = try int("num_key_value_heads", default: numAttentionHeads)
        vocabSize = try int("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings", default: 2048)
        rmsNormEps = try double("rms_norm_eps", default: 1e-6)
        ropeTheta = try double("rope_theta", default: 10000)
        if case let .bool(b)? = o["tie_word_embeddings"] { tieWordEmbeddings = b } else { tieWordEmbeddings = false }
        if case let .number(n)? = o["pad_token_id"], let id = n.int, id >= 0, id < vocabSize { padTokenId = id } else { padTokenId = nil }
        guard hiddenSize % numAttentionHeads == 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw .malformed(path, "attention heads must divide hidden_size and be a multiple of num_key_value_heads")
        }
        if let hd = o["head_dim"], case let .number(n) = hd, n.int != hiddenSize / numAttentionHeads {
            throw .unsupported(path, "head_dim \(n) different from hidden_size / num_attention_heads")
        }
        // Qwen2 always has q/k/v biases (its config.json has no key for them); Llama has them with attention_bias,
        // which then also puts one on o_proj: not supported.
        attentionBias = type == "qwen2"
        if type == "llama", let b = o["attention_bias"], b == .bool(true) { throw .unsupported(path, "attention_bias") }
        if let b = o["mlp_bias"], b == .bool(true) { throw .unsupported(path, "mlp_bias") }
        ropeScaling = nil
        // transformers 5 writes `rope_parameters` (with rope_theta inside); older configs
        // write rope_theta and `rope_scaling`.
        var scaling = o["rope_scaling"]
        if case let .object(rp)? = o["rope_parameters"] {
            if case let .number(t)? = rp["rope_theta"] { ropeTheta = t.double }
            scaling = .object(rp)
        }
        if case let .object(rs)? = scaling {
            let kind = (try? rs.string("rope_type")) ?? (try? rs.string("type")) ?? ""
            let factor = (try? rs.double("factor")) ?? 1
            switch kind {
            case "linear": ropeScaling = .linear(factor: factor)
            case "llama3":
                ropeScaling = .llama3(
                    factor: factor, lowFrequencyFactor: (try? rs.double("low_freq_factor")) ?? 1,
                    highFrequencyFactor: (try? rs.double("high_freq_factor")) ?? 4,
                    originalContext: (try? rs.int("original_max_position_embeddings")) ?? 8192)
            case "default": break
            default: throw .unsupported(path, "rope_scaling type '\(kind)'")
            }
        }
    }
}
