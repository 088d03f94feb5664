import CSupport

/// A Llama-family transformer in f32 on OpenBLAS (or with bf16 products, `compute`).
///
/// Who owns what: `LlamaParameters` owns every weight in one flat f32 buffer (Hugging Face names
/// and layouts); `Linear` owns how one weight is stored and multiplied (f32 on BLAS, or the file's
/// quantised blocks for small decode steps), so a new weight format or a bias is added in
/// Linear.swift only; `TransformerBlock` (Attention, MLP, two RMSNorms) is written once, with each
/// block's backward beside its forward; this type stacks the blocks between the embedding and the
/// head. Inference (`forward` with a KV cache) and training (`forwardKeeping`, used by
/// `Backpropagation`) run the same block code; training only asks it to keep what the backward
/// needs.
///
/// Inference runs on *segments*: new tokens appended to a KV-cache slot. Scoring a batch is one
/// segment per sequence in fresh slots; generation is a prompt segment per slot, then one token
/// per slot per step. The tokens of all segments are packed into one matrix, so every linear
/// layer is a single matrix product without padding.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let parameters: LlamaParameters
    var rope: RoPE
    private(set) var blocks: [TransformerBlock] = []
    /// The output head [vocab, d] (the embedding when tied).
    private(set) var head: Linear
    /// Weights in their file's block format, for steps of at most `Linear.blockRowsLimit` tokens.
    public var blockWeights: BlockWeights? {
        didSet { buildLayers() }
    }
    /// f32 or bf16 products with the weights (`ComputePrecision`); a new model takes the process default.
    public var compute: ComputePrecision {
        didSet { if compute != oldValue { buildLayers() } }
    }
    private var bf16Weights: BF16Weights?
    /// Whether bf16 products keep each weight's backward pack (see `BF16Weights`); settable for tests.
    var keepsBF16BackwardPacks: Bool {
        get { bf16Weights?.keepsBackward ?? true }
        set { bf16Weights?.keepsBackward = newValue }
    }

    public init(parameters: LlamaParameters) {
        config = parameters.config
        self.parameters = parameters
        compute = ComputePrecision.processDefault
        rope = RoPE(headDim: parameters.config.headDim, theta: parameters.config.ropeTheta, scaling: parameters.config.ropeScaling)
        head = Linear(
            parameters: parameters, weight: parameters.head, outputs: parameters.config.vocabSize,
            inputs: parameters.config.hiddenSize)
        buildLayers()
    }

    /// The blocks and head over the parameter buffer, with the file's blocks where there are any.
    private func buildLayers() {
        let c = config, P = parameters, d = c.hiddenSize, f = c.intermediateSize, bw = blockWeights
        if compute == .bf16, bf16Weights == nil { bf16Weights = BF16Weights(parameters: P) }
        let bf16 = compute == .bf16 ? bf16Weights : nil
        func linear(_ offset: Int, _ outputs: Int, _ inputs: Int, parts: [Int], bias: Int? = nil) -> Linear {
            var l = Linear(parameters: P, weight: offset, outputs: outputs, inputs: inputs, bias: bias).using(bw, parts: parts)
            l.bf16 = bf16
            return l
        }
        blocks = P.layers.map { L in
            TransformerBlock(
                attentionNorm: L.attnNorm,
                attention: Attention(
                    qkv: linear(L.q, c.qkvDim, d, parts: [L.q, L.k, L.v], bias: L.qkvBias), o: linear(L.o, d, c.qDim, parts: [L.o]),
                    heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim),
                mlpNorm: L.mlpNorm,
                mlp: MLP(gateUp: linear(L.gate, 2 * f, d, parts: [L.gate, L.up]), down: linear(L.down, d, f, parts: [L.down])),
                parameters: P)
        }
        head = linear(P.head, c.vocabSize, d, parts: [P.head])
    }

    public struct Segment: Sendable {
        public var slot: Int
        public var tokens: [Int32]
        public init(slot: Int, tokens: [Int32]) {
            self.slot = slot
            self.tokens = tokens
        }
    }

    /// Runs the new tokens of each segment through the model, appending their keys and values to
    /// the cache. Returns the final hidden states (after the last RMSNorm), [total tokens, hidden].
    public func forward(_ segments: [Segment], cache: KVCache) -> FloatBuffer {
        for s in segments {
            precondition(cache.lengths[s.slot] + s.tokens.count <= cache.capacity, "KV cache slot \(s.slot) is full")
        }
        let layout = StepLayout(
            counts: segments.map(\.tokens.count), offsets: segments.map { cache.lengths[$0.slot] },
            slots: segments.map(\.slot))
        let run = run(segments.map(\.tokens), layout: layout, cache: cache, keep: nil)
        for s in segments { cache.lengths[s.slot] += s.tokens.count }
        return run.hidden
    }

    /// The forward pass of training: sequences from position 0, each attending only to itself,
    /// keeping every block's activations for `Backpropagation`.
    func forwardKeeping(_ sequences: [[Int32]]) -> KeptForward {
        let layout = StepLayout(counts: sequences.map(\.count), offsets: sequences.map { _ in 0 }, slots: sequences.indices.map { $0 })
        let kept = blocks.map { _ in LayerActivations(rows: layout.total, config: config) }
        let run = run(sequences, layout: layout, cache: nil, keep: kept)
        return KeptForward(layout: layout, layers: kept, residual: run.residual, finalInverseRMS: run.inverseRMS, hidden: run.hidden)
    }

    /// What the training forward leaves for the backward.
    struct KeptForward {
        let layout: StepLayout
        let layers: [LayerActivations]
        /// The residual stream before the final RMSNorm, its 1/rms per row, and the normalised output.
        let residual: FloatBuffer
        let finalInverseRMS: FloatBuffer
        let hidden: FloatBuffer
    }

    /// Embedding, blocks and final norm for one step, shared by inference and training.
    private func run(_ tokens: [[Int32]], layout: StepLayout, cache: KVCache?, keep: [LayerActivations]?)
        -> (residual: FloatBuffer, inverseRMS: FloatBuffer, hidden: FloatBuffer)
    {
        let d = config.hiddenSize, T = layout.total, P = parameters
        rope.reserve(layout.end)
        let x = FloatBuffer(count: T * d, zeroed: false)
        var row = 0
        for t in tokens.joined() {
            (x.pointer + row * d).update(from: P.pointer(P.embed) + Int(t) * d, count: d)
            row += 1
        }
        let work = Workspace(rows: T, config: config)
        for (li, block) in blocks.enumerated() {
            block.forward(x.pointer, work: work, keep: keep?[li], layout: layout, rope: rope, cache: cache, layer: li)
        }
        let inverseRMS = FloatBuffer(count: T, zeroed: false)
        RMSNorm.forward(
            x.pointer, P.pointer(P.finalNorm), work.xn.pointer, rows: T, dim: d, eps: Float(config.rmsNormEps),
            inverseRMS: inverseRMS.pointer)
        return (x, inverseRMS, work.xn)
    }

    /// Logits of chosen rows of `hidden`: [rows.count, vocab].
    public func logits(_ hidden: FloatBuffer, rows: [Int]) -> FloatBuffer {
        let d = config.hiddenSize, V = config.vocabSize
        let gathered = FloatBuffer(count: rows.count * d, zeroed: false)
        for (i, r) in rows.enumerated() { (gathered.pointer + i * d).update(from: hidden.pointer + r * d, count: d) }
        let out = FloatBuffer(count: rows.count * V, zeroed: false)
        head.forward(gathered.pointer, out.pointer, rows: rows.count)
        return out
    }

    /// Log-probability of each completion token given everything before it, for a batch of
    /// (prompt, completion) token sequences.
    public func completionLogProbs(_ pairs: [(prompt: [Int32], completion: [Int32])]) -> [[Double]] {
        let cache = KVCache(config: config, slots: pairs.count, capacity: pairs.map { $0.prompt.count + $0.completion.count }.max() ?? 1)
        let segments = pairs.enumerated().map { Segment(slot: $0.offset, tokens: $0.element.prompt + $0.element.completion) }
        let hidden = forward(segments, cache: cache)
        var result: [[Double]] = []
        var base = 0
        let V = config.vocabSize
        for p in pairs {
            let n = p.prompt.count + p.completion.count
            // The token at position j is predicted by the hidden state at j - 1.
            let rows = (0..<p.completion.count).map { base + p.prompt.count + $0 - 1 }
            var lps: [Double] = []
            // Chunks bound the logits memory to 64 rows × vocabulary.
            for chunkStart in stride(from: 0, to: rows.count, by: 64) {
                let chunk = Array(rows[chunkStart..<min(chunkStart + 64, rows.count)])
                let logits = self.logits(hidden, rows: chunk)
                for (i, _) in chunk.enumerated() {
                    let lr = logits.pointer + i * V
                    let target = Int(p.completion[chunkStart + i])
                    lps.append(Double(lr[target]) - mi_logsumexp(lr, V))
                }
            }
            result.append(lps)
            base += n
        }
        return result
    }
}
