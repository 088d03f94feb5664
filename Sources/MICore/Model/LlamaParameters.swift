import MIStream

/// All parameters of a Llama model in one flat buffer, carved into named tensors with Hugging Face
/// names and layouts (a linear weight is [out, in], row-major). Gradients and AdamW moments use
/// the same layout, so an optimizer step is a loop over one array.
public final class LlamaParameters: @unchecked Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }

    public let config: LlamaConfig
    public let entries: [Entry]
    public let buffer: FloatBuffer
    private let index: [String: Int]

    /// Offsets of one transformer block's tensors. q, k and v are adjacent (one fused product), and
    /// so are their biases when the model has them (`qkvBias`, q's).
    public struct Layer: Sendable {
        public let attnNorm, q, k, v, o, mlpNorm, gate, up, down: Int
        public var qkvBias: Int? = nil
    }
    public let layers: [Layer]
    public let embed: Int
    public let finalNorm: Int
    /// The output head: the embedding when tied.
    public let head: Int

    public init(config c: LlamaConfig) {
        config = c
        var list: [Entry] = []
        var offset = 0
        func add(_ name: String, _ shape: [Int]) -> Int {
            let e = Entry(name: name, shape: shape, offset: offset)
            list.append(e)
            offset += e.count
            return e.offset
        }
        let d = c.hiddenSize, hd = c.headDim
        embed = add("model.embed_tokens.weight", [c.vocabSize, d])
        var ls: [Layer] = []
        for i in 0..<c.numHiddenLayers {
            let p = "model.layers.\(i)."
            let attnNorm = add(p + "input_layernorm.weight", [d])
            let q = add(p + "self_attn.q_proj.weight", [c.numAttentionHeads * hd, d])
            let k = add(p + "self_attn.k_proj.weight", [c.numKeyValueHeads * hd, d])
            let v = add(p + "self_attn.v_proj.weight", [c.numKeyValueHeads * hd, d])
            var qkvBias: Int?
            if c.attentionBias {
                qkvBias = add(p + "self_attn.q_proj.bias", [c.numAttentionHeads * hd])
                _ = add(p + "self_attn.k_proj.bias", [c.numKeyValueHeads * hd])
                _ = add(p + "self_attn.v_proj.bias", [c.numKeyValueHeads * hd])
            }
            ls.append(
                Layer(
                    attnNorm: attnNorm, q: q, k: k, v: v, o: add(p + "self_attn.o_proj.weight", [d, c.numAttentionHeads * hd]),
                    mlpNorm: add(p + "post_attention_layernorm.weight", [d]),
                    gate: add(p + "mlp.gate_proj.weight", [c.intermediateSize, d]),
                    up: add(p + "mlp.up_proj.weight", [c.intermediateSize, d]),
                    down: add(p + "mlp.down_proj.weight", [d, c.intermediateSize]), qkvBias: qkvBias))
        }
        layers = ls
        finalNorm = add("model.norm.weight", [d])
        head = c.tieWordEmbeddings ? embed : add("lm_head.weight", [c.vocabSize, d])
        entries = list
        var idx: [String: Int] = [:]
        for (i, e) in list.enumerated() { idx[e.name] = i }
        index = idx
        buffer = FloatBuffer(count: offset)
    }

    public var count: Int { buffer.count }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }

    @inline(__always) public func pointer(_ offset: Int) -> UnsafeMutablePointer<Float> { buffer.pointer + offset }

    public func values(_ name: String) -> [Float]? {
        guard let e = entry(name) else { return nil }
        return Array(UnsafeBufferPointer(start: buffer.pointer + e.offset, count: e.count))
    }
}

extension LlamaParameters {
    /// GGUF tensor name for each Hugging Face name (llama.cpp's naming).
    static func ggufName(_ hf: String) -> String? {
        switch hf {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        default: break
        }
        let parts = hf.split(separator: ".")
        guard parts.count >= 5, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]) else { return nil }
        let rest = parts[3...].joined(separator: ".")
        let map = [
            "input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
            "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
            "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
            "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
            "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
        ]
        return map[rest].map { "blk.\(i).\($0)" }
    }

    /// Loads and dequantises every tensor of a GGUF file. llama.cpp stores q_proj and k_proj
    /// with the rows of each head interleaved for its RoPE layout; they are put back in Hugging
    /// Face order here, so the model core has one layout whatever the file format.
    public convenience init(gguf: GGUFFile) throws(GGUFError) {
        let config = try LlamaConfig(gguf: gguf)
        self.init(config: config)
        for e in entries {
            guard let name = Self.ggufName(e.name), let t = gguf.tensor(name) else {
                throw GGUFError.malformed(path: gguf.path, offset: 0, "missing tensor for \(e.name)")
            }
            guard t.elementCount == e.count, t.shape.reversed() == e.shape || (e.shape.count == 1 && t.shape == e.shape) else {
                throw GGUFError.malformed(path: gguf.path, offset: 0, "tensor \(name) has shape \(t.shape), expected \(Array(e.shape.reversed()))")
            }
            let dst = buffer.pointer + e.offset
            Dequantize.run(t.type, gguf.data(of: t), dst, count: e.count)
            // llama.cpp permutes q and k for its Llama RoPE only; Qwen2's are stored as they are.
            guard config.architecture == "llama" else { continue }
            if e.name.hasSuffix("q_proj.weight") {
                Self.unpermuteRoPERows(dst, heads: config.numAttentionHeads, headDim: config.headDim, columns: config.hiddenSize)
            } else if e.name.hasSuffix("k_proj.weight") {
                Self.unpermuteRoPERows(dst, heads: config.numKeyValueHeads, headDim: config.headDim, columns: config.hiddenSize)
            }
        }
    }

    /// Within each head, GGUF row 2i+j holds Hugging Face row j·(headDim/2)+i.
    static func unpermuteRoPERows(_ w: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, columns: Int) {
        let half = headDim / 2
        var tmp = [Float](repeating: 0, count: headDim * columns)
        for h in 0..<heads {
            let base = w + h * headDim * columns
            tmp.withUnsafeMutableBufferPointer { t in
                for i in 0..<half {
                    for j in 0..<2 {
                        let src = base + (2 * i + j) * columns
                        (t.baseAddress! + (j * half + i) * columns).update(from: src, count: columns)
                    }
                }
                base.update(from: t.baseAddress!, count: headDim * columns)
            }
        }
    }
}

extension LlamaParameters {
    /// A model of the same family with only the blocks `kept` (indices into this model's blocks,
    /// in the order given): the embedding, final norm and head are copied, and kept block `i`
    /// becomes block `kept.firstIndex(of: i)` of the new model. A smaller student cut from the
    /// teacher starts from the teacher's own representations, as a depth-pruned model does.
    public func keepingLayers(_ kept: [Int]) -> LlamaParameters {
        precondition(!kept.isEmpty && kept.allSatisfy { layers.indices.contains($0) }, "layer indices out of range")
        var c = config
        c.numHiddenLayers = kept.count
        let cut = LlamaParameters(config: c)
        func copy(_ from: String, _ to: String) {
            guard let s = entry(from), let d = cut.entry(to) else { preconditionFailure("no tensor \(from) or \(to)") }
            cut.buffer.pointer.advanced(by: d.offset).update(from: buffer.pointer + s.offset, count: s.count)
        }
        for e in cut.entries {
            let parts = e.name.split(separator: ".", maxSplits: 3)
            if parts.count == 4, parts[0] == "model", parts[1] == "layers", let i = Int(parts[2]) {
                copy("model.layers.\(kept[i]).\(parts[3])", e.name)
            } else {
                copy(e.name, e.name)
            }
        }
        return cut
    }

    /// Parses a list of block indices such as `0-13,29` (ranges inclusive, in the order written).
    public static func parseLayerList(_ text: String, layers: Int) throws(LayerListError) -> [Int] {
        var out: [Int] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: "-", omittingEmptySubsequences: false)
            let bounds = parts.compactMap { Int($0) }
            guard (1...2).contains(parts.count), bounds.count == parts.count, let lo = bounds.first, let hi = bounds.last, lo <= hi
            else { throw .malformed(String(item)) }
            guard lo >= 0, hi < layers else { throw .outOfRange(String(item), layers: layers) }
            out += Array(lo...hi)
        }
        guard Set(out).count == out.count else { throw .repeated(text) }
        return out
    }

    public enum LayerListError: StageError, Equatable {
        case malformed(String)
        case outOfRange(String, layers: Int)
        case repeated(String)

        public var description: String {
            switch self {
            case let .malformed(s): return "layer list item '\(s)' is not an index or a range a-b"
            case let .outOfRange(s, n): return "layer list item '\(s)' is outside the model's blocks 0-\(n - 1)"
            case let .repeated(s): return "layer list '\(s)' names a block twice"
            }
        }

        public var exitStatus: ExitStatus { .usage }
    }
}
