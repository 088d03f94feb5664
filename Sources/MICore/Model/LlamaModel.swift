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
    internal(set) var rope: RoPE
    /// Weights in their file's block format, for steps of at most `blockRowsLimit` tokens.
    public var blockWeights: BlockWeights?
    /// Above this many tokens in a step, f32 matrix products on BLAS are faster.
    public static let blockRowsLimit = 16

    public init(parameters: LlamaParameters) {
        config = parameters.config
        self.parameters = parameters
        rope = RoPE(headDim: parameters.config.headDim, theta: parameters.config.ropeTheta, scaling: parameters.config.ropeScaling)
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
        // q, k and v rows side by side ([total, qkvDim]); gate and up likewise ([total, 2f]).
        let qkvDim = qDim + 2 * kvDim
        let qkv = FloatBuffer(count: total * qkvDim, zeroed: false)
        let att = FloatBuffer(count: total * qDim, zeroed: false)
        let gateUp = FloatBuffer(count: total * 2 * f, zeroed: false)
        let act = FloatBuffer(count: total * f, zeroed: false)
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
        let group = c.numAttentionHeads / c.numKeyValueHeads

        for (li, L) in P.layers.enumerated() {
            // Attention block: x += Wo · attention(RoPE(Wq·n(x)), RoPE(Wk·n(x)), Wv·n(x)).
            RMSNorm.forward(x.pointer, P.pointer(L.attnNorm), xn.pointer, rows: total, dim: d, eps: eps)
            // Wq, Wk and Wv are adjacent in the parameter buffer: one product gives all three.
            if let bw = blocks([L.q, L.k, L.v], rows: total) {
                bw.multiply(bw.matrices[L.q]!, xn.pointer, ldx: d, qkv.pointer, ldy: qkvDim, m: total, accumulate: false)
                bw.multiply(bw.matrices[L.k]!, xn.pointer, ldx: d, qkv.pointer + qDim, ldy: qkvDim, m: total, accumulate: false)
                bw.multiply(bw.matrices[L.v]!, xn.pointer, ldx: d, qkv.pointer + qDim + kvDim, ldy: qkvDim, m: total, accumulate: false)
            } else {
                BLAS.matmulT(xn.pointer, P.pointer(L.q), qkv.pointer, m: total, n: qkvDim, k: d)
            }
            let q = qkv.pointer, k = qkv.pointer + qDim, v = qkv.pointer + qDim + kvDim
            for r in 0..<total {
                rope.apply(q + r * qkvDim, heads: c.numAttentionHeads, stride: hd, position: rowPositions[r])
                rope.apply(k + r * qkvDim, heads: c.numKeyValueHeads, stride: hd, position: rowPositions[r])
            }
            for (si, s) in segments.enumerated() {
                let p0 = rowPositions[starts[si]]
                for i in 0..<s.tokens.count {
                    cache.keyRow(layer: li, slot: s.slot, position: p0 + i).update(from: k + (starts[si] + i) * qkvDim, count: kvDim)
                    cache.valueRow(layer: li, slot: s.slot, position: p0 + i).update(from: v + (starts[si] + i) * qkvDim, count: kvDim)
                }
            }
            // One job per (segment, head), split over the cores with single-threaded BLAS inside.
            let jobs = segments.count * c.numAttentionHeads
            if segments.allSatisfy({ $0.tokens.count == 1 }) {
                // Decoding: one query per sequence, no matrix products worth calling BLAS for.
                let scale = 1 / Float(hd).squareRoot()
                Parallel.chunks(jobs) { from, to in
                    let scratch = FloatBuffer(count: maxEnd, zeroed: false)
                    for job in from..<to {
                        let si = job / c.numAttentionHeads, h = job % c.numAttentionHeads
                        let slot = segments[si].slot, kvh = h / group
                        mi_attend_one(q + starts[si] * qkvDim + h * hd,
                                      cache.keyRow(layer: li, slot: slot, position: 0) + kvh * hd,
                                      cache.valueRow(layer: li, slot: slot, position: 0) + kvh * hd,
                                      kvDim, rowPositions[starts[si]] + 1, hd, scale,
                                      att.pointer + starts[si] * qDim + h * hd, scratch.pointer)
                    }
                }
            } else {
            Parallel.singleThreadedBLAS {
                Parallel.chunks(jobs) { from, to in
                    let scratch = FloatBuffer(count: maxEnd * maxEnd, zeroed: false)
                    for job in from..<to {
                        let si = job / c.numAttentionHeads, h = job % c.numAttentionHeads
                        let s = segments[si]
                        attend(layer: li, slot: s.slot, head: h / group, query: q + starts[si] * qkvDim + h * hd, queryStride: qkvDim,
                               out: att.pointer + starts[si] * qDim + h * hd, p0: rowPositions[starts[si]], n: s.tokens.count,
                               scores: scratch.pointer, cache: cache)
                    }
                }
            }
            }
            if let bw = blocks([L.o], rows: total) {
                bw.multiply(bw.matrices[L.o]!, att.pointer, ldx: qDim, x.pointer, ldy: d, m: total, accumulate: true)
            } else {
                BLAS.matmulT(att.pointer, P.pointer(L.o), x.pointer, m: total, n: d, k: qDim, accumulate: true)
            }

            // MLP block: x += W_down · (silu(W_gate·n(x)) ⊙ W_up·n(x)).
            RMSNorm.forward(x.pointer, P.pointer(L.mlpNorm), xn.pointer, rows: total, dim: d, eps: eps)
            if let bw = blocks([L.gate, L.up], rows: total) {
                bw.multiply(bw.matrices[L.gate]!, xn.pointer, ldx: d, gateUp.pointer, ldy: 2 * f, m: total, accumulate: false)
                bw.multiply(bw.matrices[L.up]!, xn.pointer, ldx: d, gateUp.pointer + f, ldy: 2 * f, m: total, accumulate: false)
            } else {
                BLAS.matmulT(xn.pointer, P.pointer(L.gate), gateUp.pointer, m: total, n: 2 * f, k: d)
            }
            let gu = gateUp.pointer, a = act.pointer
            Parallel.chunks(total, minimumPerChunk: 8) { from, to in
                for r in from..<to { mi_silu_mul(gu + r * 2 * f, gu + r * 2 * f + f, a + r * f, f) }
            }
            if let bw = blocks([L.down], rows: total) {
                bw.multiply(bw.matrices[L.down]!, act.pointer, ldx: f, x.pointer, ldy: d, m: total, accumulate: true)
            } else {
                BLAS.matmulT(act.pointer, P.pointer(L.down), x.pointer, m: total, n: d, k: f, accumulate: true)
            }
        }
        for s in segments { cache.lengths[s.slot] += s.tokens.count }
        RMSNorm.forward(x.pointer, P.pointer(P.finalNorm), xn.pointer, rows: total, dim: d, eps: eps)
        return xn
    }

    /// Causal attention of `n` new queries of one head (positions p0..<p0+n) over the cached keys
    /// and values of its key/value head. query: [n, headDim] with row stride `queryStride`; out:
    /// [n, headDim] with row stride qDim; scores: scratch of at least n × (p0 + n). Queries go in
    /// blocks, each against only the keys it can see, which skips most of the masked half.
    private func attend(layer: Int, slot: Int, head kvHead: Int, query: UnsafePointer<Float>, queryStride: Int,
                        out: UnsafeMutablePointer<Float>, p0: Int, n: Int, scores: UnsafeMutablePointer<Float>, cache: KVCache) {
        let hd = config.headDim
        let qDim = config.numAttentionHeads * hd, kvDim = config.numKeyValueHeads * hd
        let kh = cache.keyRow(layer: layer, slot: slot, position: 0) + kvHead * hd
        let vh = cache.valueRow(layer: layer, slot: slot, position: 0) + kvHead * hd
        let block = 64
        for b0 in stride(from: 0, to: n, by: block) {
            let rows = min(block, n - b0)
            let keys = p0 + b0 + rows
            // scores[rows, keys] = q · kᵀ / sqrt(headDim); query i sees keys 0...p0+i.
            BLAS.matmulT(query + b0 * queryStride, kh, scores, m: rows, n: keys, k: hd, lda: queryStride, ldb: kvDim, ldc: keys,
                         alpha: 1 / Float(hd).squareRoot())
            for i in 0..<rows {
                let row = scores + i * keys
                let visible = p0 + b0 + i + 1
                _ = mi_softmax_inplace(row, visible)
                if visible < keys { (row + visible).update(repeating: 0, count: keys - visible) }
            }
            BLAS.matmul(scores, vh, out + b0 * qDim, m: rows, n: hd, k: keys, lda: keys, ldb: kvDim, ldc: qDim)
        }
    }

    /// The block weights when every one of `offsets` has them and the step is small enough.
    private func blocks(_ offsets: [Int], rows: Int) -> BlockWeights? {
        guard rows <= Self.blockRowsLimit, let bw = blockWeights, offsets.allSatisfy({ bw.matrices[$0] != nil }) else { return nil }
        return bw
    }

    /// Logits of chosen rows of `hidden`: [rows.count, vocab].
    public func logits(_ hidden: FloatBuffer, rows: [Int]) -> FloatBuffer {
        let d = config.hiddenSize, V = config.vocabSize
        let gathered = FloatBuffer(count: rows.count * d, zeroed: false)
        for (i, r) in rows.enumerated() { (gathered.pointer + i * d).update(from: hidden.pointer + r * d, count: d) }
        let out = FloatBuffer(count: rows.count * V, zeroed: false)
        if let bw = blocks([parameters.head], rows: rows.count) {
            bw.multiply(bw.matrices[parameters.head]!, gathered.pointer, ldx: d, out.pointer, ldy: V, m: rows.count, accumulate: false)
        } else {
            BLAS.matmulT(gathered.pointer, parameters.pointer(parameters.head), out.pointer, m: rows.count, n: V, k: d)
        }
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
