import CSupport

/// A Llama-family transformer in f32 on OpenBLAS.
///
/// Inference runs on *segments*: new tokens appended to a KV-cache slot. Scoring a batch is one
/// segment per sequence in fresh slots; generation is a prompt segment per slot, then one token
/// per slot per step. The tokens of all segments are packed into one matrix, so every linear
/// layer is a single matrix product without padding.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let parameters: LlamaParameters
    var rope: RoPE

    public init(parameters: LlamaParameters) {
        config = parameters.config
        self.parameters = parameters
        rope = RoPE(headDim: parameters.config.headDim, theta: parameters.config.ropeTheta)
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
        let c = config
        let d = c.hiddenSize, hd = c.headDim
        let qDim = c.numAttentionHeads * hd, kvDim = c.numKeyValueHeads * hd, f = c.intermediateSize
        let total = segments.reduce(0) { $0 + $1.tokens.count }
        var starts: [Int] = []
        var rowPositions: [Int] = []
        var maxEnd = 0
        for s in segments {
            starts.append(rowPositions.count)
            let p0 = cache.lengths[s.slot]
            precondition(p0 + s.tokens.count <= cache.capacity, "KV cache slot \(s.slot) is full")
            for i in 0..<s.tokens.count { rowPositions.append(p0 + i) }
            maxEnd = max(maxEnd, p0 + s.tokens.count)
        }
        rope.reserve(maxEnd)

        let x = FloatBuffer(count: total * d, zeroed: false)
        let xn = FloatBuffer(count: total * d, zeroed: false)
        let q = FloatBuffer(count: total * qDim, zeroed: false)
        let k = FloatBuffer(count: total * kvDim, zeroed: false)
        let v = FloatBuffer(count: total * kvDim, zeroed: false)
        let att = FloatBuffer(count: total * qDim, zeroed: false)
        let gate = FloatBuffer(count: total * f, zeroed: false)
        let up = FloatBuffer(count: total * f, zeroed: false)
        let scores = FloatBuffer(count: maxEnd * maxEnd, zeroed: false)
        let P = parameters

        // Embedding lookup.
        var row = 0
        for s in segments {
            for t in s.tokens {
                (x.pointer + row * d).update(from: P.pointer(P.embed) + Int(t) * d, count: d)
                row += 1
            }
        }
        let eps = Float(c.rmsNormEps)
        let scale = 1 / Float(hd).squareRoot()
        let group = c.numAttentionHeads / c.numKeyValueHeads

        for (li, L) in P.layers.enumerated() {
            // Attention block: x += Wo · attention(RoPE(Wq·n(x)), RoPE(Wk·n(x)), Wv·n(x)).
            RMSNorm.forward(x.pointer, P.pointer(L.attnNorm), xn.pointer, rows: total, dim: d, eps: eps)
            BLAS.matmulT(xn.pointer, P.pointer(L.q), q.pointer, m: total, n: qDim, k: d)
            BLAS.matmulT(xn.pointer, P.pointer(L.k), k.pointer, m: total, n: kvDim, k: d)
            BLAS.matmulT(xn.pointer, P.pointer(L.v), v.pointer, m: total, n: kvDim, k: d)
            for r in 0..<total {
                rope.apply(q.pointer + r * qDim, heads: c.numAttentionHeads, stride: hd, position: rowPositions[r])
                rope.apply(k.pointer + r * kvDim, heads: c.numKeyValueHeads, stride: hd, position: rowPositions[r])
            }
            for (si, s) in segments.enumerated() {
                let p0 = rowPositions[starts[si]]
                let n = s.tokens.count
                for i in 0..<n {
                    cache.keyRow(layer: li, slot: s.slot, position: p0 + i).update(from: k.pointer + (starts[si] + i) * kvDim, count: kvDim)
                    cache.valueRow(layer: li, slot: s.slot, position: p0 + i).update(from: v.pointer + (starts[si] + i) * kvDim, count: kvDim)
                }
                let keysUsed = p0 + n
                for h in 0..<c.numAttentionHeads {
                    let kvh = h / group
                    let qh = q.pointer + starts[si] * qDim + h * hd
                    let kh = cache.keyRow(layer: li, slot: s.slot, position: 0) + kvh * hd
                    let vh = cache.valueRow(layer: li, slot: s.slot, position: 0) + kvh * hd
                    // scores[n, keysUsed] = q · kᵀ / sqrt(headDim), causal.
                    BLAS.matmulT(qh, kh, scores.pointer, m: n, n: keysUsed, k: hd, lda: qDim, ldb: kvDim, ldc: keysUsed, alpha: scale)
                    for i in 0..<n {
                        let sr = scores.pointer + i * keysUsed
                        let visible = p0 + i + 1
                        _ = mi_softmax_inplace(sr, visible)
                        if visible < keysUsed { (sr + visible).update(repeating: 0, count: keysUsed - visible) }
                    }
                    BLAS.matmul(scores.pointer, vh, att.pointer + starts[si] * qDim + h * hd, m: n, n: hd, k: keysUsed,
                                lda: keysUsed, ldb: kvDim, ldc: qDim)
                }
            }
            BLAS.matmulT(att.pointer, P.pointer(L.o), x.pointer, m: total, n: d, k: qDim, accumulate: true)

            // MLP block: x += W_down · (silu(W_gate·n(x)) ⊙ W_up·n(x)).
            RMSNorm.forward(x.pointer, P.pointer(L.mlpNorm), xn.pointer, rows: total, dim: d, eps: eps)
            BLAS.matmulT(xn.pointer, P.pointer(L.gate), gate.pointer, m: total, n: f, k: d)
            BLAS.matmulT(xn.pointer, P.pointer(L.up), up.pointer, m: total, n: f, k: d)
            mi_silu_mul(gate.pointer, up.pointer, gate.pointer, total * f)
            BLAS.matmulT(gate.pointer, P.pointer(L.down), x.pointer, m: total, n: d, k: f, accumulate: true)
        }
        for s in segments { cache.lengths[s.slot] += s.tokens.count }
        RMSNorm.forward(x.pointer, P.pointer(P.finalNorm), xn.pointer, rows: total, dim: d, eps: eps)
        return xn
    }

    /// Logits of chosen rows of `hidden`: [rows.count, vocab].
    public func logits(_ hidden: FloatBuffer, rows: [Int]) -> FloatBuffer {
        let d = config.hiddenSize, V = config.vocabSize
        let gathered = FloatBuffer(count: rows.count * d, zeroed: false)
        for (i, r) in rows.enumerated() { (gathered.pointer + i * d).update(from: hidden.pointer + r * d, count: d) }
        let out = FloatBuffer(count: rows.count * V, zeroed: false)
        BLAS.matmulT(gathered.pointer, parameters.pointer(parameters.head), out.pointer, m: rows.count, n: V, k: d)
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
