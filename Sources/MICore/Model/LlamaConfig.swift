/// Hyper-parameters of a Llama-family transformer. Field names follow Hugging Face's
/// config.json; `init(gguf:)` maps the GGUF metadata keys (`llama.*`) in one place.
public struct LlamaConfig: Codable, Sendable, Equatable {
    public var architecture: String
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var tieWordEmbeddings: Bool
    /// transformers builds the embedding as nn.Embedding(padding_idx: pad_token_id), so the
    /// embedding row of this token gets no gradient from its lookups; training does the same.
    public var padTokenId: Int?
    /// Context-extension rescaling of the rotary frequencies, if the checkpoint uses one.
    public var ropeScaling: RopeScaling?
    /// Biases on the query, key and value projections (Qwen2).
    public var attentionBias = false

    public enum RopeScaling: Codable, Sendable, Equatable {
        /// Positions divided by `factor`.
        case linear(factor: Double)
        /// Llama 3.1's frequency-dependent rescaling.
        case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Int)
    }

    enum CodingKeys: String, CodingKey {
        case architecture = "model_type"
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case tieWordEmbeddings = "tie_word_embeddings"
        case ropeScaling = "rope_scaling"
        case padTokenId = "pad_token_id"
        case attentionBias = "attention_bias"
    }

    public var headDim: Int { hiddenSize / numAttentionHeads }
    /// Widths of the query, key/value and fused q|k|v projections' outputs.
    public var qDim: Int { numAttentionHeads * headDim }
    public var kvDim: Int { numKeyValueHeads * headDim }
    public var qkvDim: Int { qDim + 2 * kvDim }

    public init(
        architecture: String, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
        numKeyValueHeads: Int, vocabSize: Int, maxPositionEmbeddings: Int, rmsNormEps: Double, ropeTheta: Double,
        tieWordEmbeddings: Bool, ropeScaling: RopeScaling?, padTokenId: Int? = nil, attentionBias: Bool = false
    ) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.tieWordEmbeddings = tieWordEmbeddings
        self.ropeScaling = ropeScaling
        self.padTokenId = padTokenId
        self.attentionBias = attentionBias
    }

    /// Supported `general.architecture` (GGUF) and `model_type` (config.json) values: Llama, and
    /// Qwen2, which is Llama with biases on the query, key and value projections.
    public static let architectures: Set<String> = ["llama", "qwen2"]

    /// Largest sizes accepted from a file, far above any model this project can run.
    static let limits = (layers: 512, hidden: 65536, heads: 1024, vocab: 1 << 22)

    public init(gguf: GGUFFile) throws(GGUFError) {
        func fail(_ m: String) -> GGUFError { .malformed(path: gguf.path, offset: 0, m) }
        guard let arch = gguf.string("general.architecture") else { throw fail("missing general.architecture") }
        guard Self.architectures.contains(arch) else {
            throw fail("architecture '\(arch)' is not supported (supported: \(Self.architectures.sorted().joined(separator: ", ")))")
        }
        func int(_ key: String, max: Int) throws(GGUFError) -> Int {
            guard let v = gguf.int("\(arch).\(key)") else { throw fail("missing \(arch).\(key)") }
            guard v > 0, v <= max else { throw fail("\(arch).\(key) = \(v) is out of range") }
            return v
        }
        architecture = arch
        attentionBias = arch == "qwen2"
        numHiddenLayers = try int("block_count", max: Self.limits.layers)
        hiddenSize = try int("embedding_length", max: Self.limits.hidden)
        intermediateSize = try int("feed_forward_length", max: Self.limits.hidden * 8)
        numAttentionHeads = try int("attention.head_count", max: Self.limits.heads)
        numKeyValueHeads =
            gguf.metadata["\(arch).attention.head_count_kv"] == nil ? numAttentionHeads : try int("attention.head_count_kv", max: Self.limits.heads)
        maxPositionEmbeddings = try int("context_length", max: 1 << 24)
        rmsNormEps = gguf.double("\(arch).attention.layer_norm_rms_epsilon") ?? 1e-5
        ropeTheta = gguf.double("\(arch).rope.freq_base") ?? 10000
        let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array?.count
        if let v = gguf.int("\(arch).vocab_size") {
            vocabSize = v
        } else if let tokens {
            vocabSize = tokens
        } else {
            throw fail("no vocabulary size")
        }
        guard vocabSize > 0, vocabSize <= Self.limits.vocab else { throw fail("vocabulary size \(vocabSize) is out of range") }
        if let tokens, tokens != vocabSize { throw fail("tokenizer.ggml.tokens has \(tokens) entries, vocabulary size is \(vocabSize)") }
        guard hiddenSize % numAttentionHeads == 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw fail("heads (\(numAttentionHeads)) must divide the hidden size and be a multiple of the key/value heads (\(numKeyValueHeads))")
        }
        tieWordEmbeddings = gguf.tensor("output.weight") == nil
        padTokenId = gguf.int("tokenizer.ggml.padding_token_id").flatMap { $0 < vocabSize ? $0 : nil }
        ropeScaling = nil
        if let kind = gguf.string("\(arch).rope.scaling.type"), kind != "none" {
            guard kind == "linear", let f = gguf.double("\(arch).rope.scaling.factor") else { throw fail("rope scaling '\(kind)' is not supported") }
            ropeScaling = .linear(factor: f)
        }
    }
}
