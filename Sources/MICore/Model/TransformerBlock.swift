import CSupport

/// The rows of one step's packed token matrix: the new tokens of each sequence, one after another.
/// With a KV cache a sequence continues from the tokens its slot holds; in training every sequence
/// starts at position 0 and attends only to itself.
struct StepLayout {
    /// First row, number of rows and first position of each sequence.
    let starts: [Int]
    let counts: [Int]
    let offsets: [Int]
    /// KV-cache slot of each sequence (unused without a cache).
    let slots: [Int]
    /// Position of each row.
    let positions: [Int]
    /// One past the largest position.
    let end: Int

    init(counts: [Int], offsets: [Int], slots: [Int]) {
        var starts: [Int] = [], positions: [Int] = []
        for (n, p0) in zip(counts, offsets) {
            starts.append(positions.count)
            positions += Array(p0..<(p0 + n))
        }
        self.starts = starts
        self.counts = counts
        self.offsets = offsets
        self.slots = slots
        self.positions = positions
        end = zip(counts, offsets).map { $0 + $1 }.max() ?? 0
    }

    var total: Int { positions.count }
    var sequences: Int { counts.count }
}

/// Buffers one forward step reuses from layer to layer.
struct Workspace {
    let xn, qkv, att, gateUp, act: FloatBuffer
    init(rows T: Int, config c: LlamaConfig) {
        xn = FloatBuffer(count: T * c.hiddenSize, zeroed: false)
        qkv = FloatBuffer(count: T * c.qkvDim, zeroed: false)
        att = FloatBuffer(count: T * c.qDim, zeroed: false)
        gateUp = FloatBuffer(count: T * 2 * c.intermediateSize, zeroed: false)
        act = FloatBuffer(count: T * c.intermediateSize, zeroed: false)
    }
}

/// What a block's backward needs of its forward. Normalised inputs, attention probabilities and
/// the SwiGLU output are cheap to recompute and are not kept, which keeps a 256-token step of the
/// default model under 2.5 GB with the optimizer state.
final class LayerActivations {
    let x: FloatBuffer // block input (residual stream) [T, d]
    let r1: FloatBuffer // 1/rms of x [T]
    let qkv: FloatBuffer // q, k after RoPE and v [T, qkvDim]
    let att: FloatBuffer // attention output before Wo [T, qDim]
    let h: FloatBuffer // residual after attention [T, d]
    let r2: FloatBuffer // 1/rms of h [T]
    let gateUp: FloatBuffer // [T, 2f]
    init(rows T: Int, config c: LlamaConfig) {
        x = FloatBuffer(count: T * c.hiddenSize, zeroed: false)
        r1 = FloatBuffer(count: T, zeroed: false)
        qkv = FloatBuffer(count: T * c.qkvDim, zeroed: false)
        att = FloatBuffer(count: T * c.qDim, zeroed: false)
        h = FloatBuffer(count: T * c.hiddenSize, zeroed: false)
        r2 = FloatBuffer(count: T, zeroed: false)
        gateUp = FloatBuffer(count: T * 2 * c.intermediateSize, zeroed: false)
    }
}

/// Gradient buffers of one backward step, reused from layer to layer.
struct BackwardWorkspace {
    let xn, act, dAct, dGateUp, dXn, dAtt, dQKV: FloatBuffer
    init(rows T: Int, config c: LlamaConfig) {
        let d = c.hiddenSize, f = c.intermediateSize
        xn = FloatBuffer(count: T * d, zeroed: false)
        act = FloatBuffer(count: T * f, zeroed: false)
        dAct = FloatBuffer(count: T * f, zeroed: false)
        dGateUp = FloatBuffer(count: T * 2 * f, zeroed: false)
        dXn = FloatBuffer(count: T * d, zeroed: false)
        dAtt = FloatBuffer(count: T * c.qDim, zeroed: false)
        dQKV = FloatBuffer(count: T * c.qkvDim, zeroed: false)
    }
}

/// Causal self-attention with RoPE and grouped-query heads:
/// x += Wo · attention(RoPE(Wq·xn), RoPE(Wk·xn), Wv·xn).
struct Attention {
    /// Wq, Wk and Wv as one [qDim + 2·kvDim, d] layer (adjacent in the parameter buffer).
    let qkv: Linear
    /// [d, qDim].
    let o: Linear
    let heads, kvHeads, headDim: Int
    var qDim: Int { heads * headDim }
    var kvDim: Int { kvHeads * headDim }
    var qkvDim: Int { qDim + 2 * kvDim }
    var group: Int { heads / kvHeads }

    /// xn: [T, d] → qkv: [T, qkvDim] (q and k after RoPE), att: [T, qDim]; x: [T, d] += Wo·att.
    /// With a cache, keys and values are appended to each sequence's slot and read from there.
    func forward(
        xn: UnsafePointer<Float>, qkv qkvOut: UnsafeMutablePointer<Float>, att: UnsafeMutablePointer<Float>,
        x: UnsafeMutablePointer<Float>, layout: StepLayout, rope: RoPE, cache: KVCache?, layer: Int
    ) {
        let T = layout.total, hd = headDim
        qkv.forward(xn, qkvOut, rows: T)
        for r in 0..<T {
            rope.apply(qkvOut + r * qkvDim, heads: heads, stride: hd, position: layout.positions[r])
            rope.apply(qkvOut + r * qkvDim + qDim, heads: kvHeads, stride: hd, position: layout.positions[r])
        }
        if let cache {
            for si in 0..<layout.sequences {
                for i in 0..<layout.counts[si] {
                    let row = qkvOut + (layout.starts[si] + i) * qkvDim, p = layout.offsets[si] + i
                    cache.keyRow(layer: layer, slot: layout.slots[si], position: p).update(from: row + qDim, count: kvDim)
                    cache.valueRow(layer: layer, slot: layout.slots[si], position: p).update(from: row + qDim + kvDim, count: kvDim)
                }
            }
        }
        // Keys and values of sequence si's kv head h: its cache slot, or its own rows of qkv.
        func keysValues(_ si: Int, _ kvh: Int) -> (UnsafePointer<Float>, UnsafePointer<Float>, Int) {
            if let cache {
                let slot = layout.slots[si]
                return (
                    UnsafePointer(cache.keyRow(layer: layer, slot: slot, position: 0) + kvh * hd),
                    UnsafePointer(cache.valueRow(layer: layer, slot: slot, position: 0) + kvh * hd), kvDim
                )
            }
            let base = UnsafePointer(qkvOut + layout.starts[si] * qkvDim + qDim + kvh * hd)
            return (base, base + kvDim, qkvDim)
        }
        let jobs = layout.sequences * heads
        if cache != nil && layout.counts.allSatisfy({ $0 == 1 }) {
            // Decoding: one query per sequence, no matrix products worth calling BLAS for.
            let scale = 1 / Float(hd).squareRoot()
            Parallel.chunks(jobs) { from, to in
                let scratch = FloatBuffer(count: layout.end, zeroed: false)
                for job in from..<to {
                    let si = job / heads, h = job % heads, (k, v, stride) = keysValues(si, h / group)
                    mi_attend_one(
                        qkvOut + layout.starts[si] * qkvDim + h * hd, k, v, stride, layout.offsets[si] + 1, hd, scale,
                        att + layout.starts[si] * qDim + h * hd, scratch.pointer)
                }
            }
        } else {
            // One job per (sequence, head), split over the cores with single-threaded BLAS inside.
            Parallel.singleThreadedBLAS {
                Parallel.chunks(jobs) { from, to in
                    let scratch = FloatBuffer(count: min(64, layout.end) * layout.end, zeroed: false)
                    for job in from..<to {
                        let si = job / heads, h = job % heads, (k, v, stride) = keysValues(si, h / group)
                        Self.attend(
                            query: qkvOut + layout.starts[si] * qkvDim + h * hd, queryStride: qkvDim, keys: k, values: v,
                            kvStride: stride, out: att + layout.starts[si] * qDim + h * hd, outStride: qDim,
                            p0: layout.offsets[si], n: layout.counts[si], headDim: hd, scores: scratch.pointer)
                    }
                }
            }
        }
        o.forward(att, x, rows: T, accumulate: true)
    }

    /// Backward of `forward`, given dx = ∂L/∂(its output x) [T, d], the saved qkv and att, and xn
    /// (its input, recomputed): weight gradients into `gradients`, dXn = ∂L/∂xn [T, d].
    func backward(
        dx: UnsafePointer<Float>, qkv saved: UnsafePointer<Float>, att: UnsafePointer<Float>, xn: UnsafePointer<Float>,
        dXn: UnsafeMutablePointer<Float>, layout: StepLayout, rope: RoPE, work w: BackwardWorkspace,
        gradients G: UnsafeMutablePointer<Float>
    ) {
        let T = layout.total, hd = headDim, dAtt = w.dAtt.pointer, dQKV = w.dQKV.pointer
        // Inverts `o.forward(att, x, accumulate: true)`: dWo += dxᵀ·att, dAtt = dx·Wo.
        o.backward(dx, x: att, dx: dAtt, rows: T, gradients: G)
        w.dQKV.zero()
        // Inverts the per-(sequence, head) `attend`. Heads sharing a kv head write the same dK, dV
        // rows: one job per (sequence, kv head).
        Parallel.singleThreadedBLAS {
            Parallel.chunks(layout.sequences * kvHeads) { from, to in
                let longest = layout.counts.max() ?? 1
                let probs = FloatBuffer(count: longest * longest, zeroed: false)
                let dP = FloatBuffer(count: longest * longest, zeroed: false)
                for job in from..<to {
                    let si = job / kvHeads, kvh = job % kvHeads, base = layout.starts[si] * qkvDim
                    for head in (kvh * group)..<((kvh + 1) * group) {
                        let q = base + head * hd, k = base + qDim + kvh * hd, v = base + qDim + kvDim + kvh * hd
                        Self.attendBackward(
                            dO: dAtt + layout.starts[si] * qDim + head * hd, dOStride: qDim,
                            q: saved + q, k: saved + k, v: saved + v, dq: dQKV + q, dk: dQKV + k, dv: dQKV + v,
                            stride: qkvDim, n: layout.counts[si], headDim: hd, probs: probs.pointer, dP: dP.pointer)
                    }
                }
            }
        }
        // Inverts `rope.apply`: a rotation, so its backward rotates the gradients back.
        for r in 0..<T {
            rope.apply(dQKV + r * qkvDim, heads: heads, stride: hd, position: layout.positions[r], inverse: true)
            rope.apply(dQKV + r * qkvDim + qDim, heads: kvHeads, stride: hd, position: layout.positions[r], inverse: true)
        }
        // Inverts `qkv.forward(xn, qkvOut)`: dWqkv += dQKVᵀ·xn, dXn = dQKV·Wqkv.
        qkv.backward(dQKV, x: xn, dx: dXn, rows: T, gradients: G)
    }

    /// Causal attention of `n` new queries of one head (positions p0..<p0+n) over keys and values
    /// 0..<p0+n of its kv head (rows `kvStride` apart). query: [n, headDim], rows `queryStride`
    /// apart; out likewise with `outStride`; scores: scratch of min(n, 64) × (p0 + n). Queries go
    /// in blocks of 64, each against only the keys it can see, which skips most of the masked half.
    static func attend(
        query: UnsafePointer<Float>, queryStride: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
        kvStride: Int, out: UnsafeMutablePointer<Float>, outStride: Int, p0: Int, n: Int, headDim hd: Int,
        scores: UnsafeMutablePointer<Float>
    ) {
        let block = 64
        for b0 in stride(from: 0, to: n, by: block) {
            let rows = min(block, n - b0)
            let visibleKeys = p0 + b0 + rows
            // scores[rows, keys] = q · kᵀ / √headDim; query i sees keys 0...p0+i.
            BLAS.matmulT(
                query + b0 * queryStride, keys, scores, m: rows, n: visibleKeys, k: hd, lda: queryStride, ldb: kvStride,
                ldc: visibleKeys, alpha: 1 / Float(hd).squareRoot())
            for i in 0..<rows {
                let row = scores + i * visibleKeys
                let visible = p0 + b0 + i + 1
                _ = mi_softmax_inplace(row, visible)
                if visible < visibleKeys { (row + visible).update(repeating: 0, count: visibleKeys - visible) }
            }
            BLAS.matmul(
                scores, values, out + b0 * outStride, m: rows, n: hd, k: visibleKeys, lda: visibleKeys, ldb: kvStride,
                ldc: outStride)
        }
    }

    /// Backward of `attend` for a sequence of n tokens from position 0 (training): from dO [n, hd],
    /// dq = ∂L/∂q (written) and dk, dv (+=). The probabilities are recomputed: P = softmax(q·kᵀ/√hd).
    static func attendBackward(
        dO: UnsafePointer<Float>, dOStride: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
        v: UnsafePointer<Float>, dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>,
        dv: UnsafeMutablePointer<Float>, stride: Int, n: Int, headDim hd: Int,
        probs p: UnsafeMutablePointer<Float>, dP: UnsafeMutablePointer<Float>
    ) {
        let scale = 1 / Float(hd).squareRoot()
        BLAS.matmulT(q, k, p, m: n, n: n, k: hd, lda: stride, ldb: stride, ldc: n, alpha: scale)
        for i in 0..<n {
            _ = mi_softmax_inplace(p + i * n, i + 1)
            if i + 1 < n { (p + i * n + i + 1).update(repeating: 0, count: n - i - 1) }
        }
        // out = P·V: dV += Pᵀ·dO, dP = dO·Vᵀ.
        BLAS.matmulTA(p, dO, dv, m: n, n: hd, k: n, lda: n, ldb: dOStride, ldc: stride, accumulate: true)
        BLAS.matmulT(dO, v, dP, m: n, n: n, k: hd, lda: dOStride, ldb: stride, ldc: n)
        // P = softmax(S): dS = P ⊙ (dP − Σ_j P·dP), then S = q·kᵀ·scale gives the scale.
        for i in 0..<n {
            let pr = p + i * n, dr = dP + i * n
            var dot: Float = 0
            for j in 0...i { dot += pr[j] * dr[j] }
            for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scale }
            if i + 1 < n { (dr + i + 1).update(repeating: 0, count: n - i - 1) }
        }
        // S = q·kᵀ: dq = dS·K, dK += dSᵀ·Q.
        BLAS.matmul(dP, k, dq, m: n, n: hd, k: n, lda: n, ldb: stride, ldc: stride)
        BLAS.matmulTA(dP, q, dk, m: n, n: hd, k: n, lda: n, ldb: stride, ldc: stride, accumulate: true)
    }
}

/// The SwiGLU MLP: x += W_down · (silu(W_gate·xn) ⊙ W_up·xn).
struct MLP {
    /// W_gate and W_up as one [2f, d] layer (adjacent in the parameter buffer).
    let gateUp: Linear
    /// [d, f].
    let down: Linear
    var f: Int { down.inputs }

    /// xn: [T, d] → gateUp: [T, 2f], act: [T, f]; x: [T, d] += W_down·act.
    func forward(
        xn: UnsafePointer<Float>, gateUp gu: UnsafeMutablePointer<Float>, act: UnsafeMutablePointer<Float>,
        x: UnsafeMutablePointer<Float>, rows T: Int
    ) {
        gateUp.forward(xn, gu, rows: T)
        Self.swiglu(gu, into: act, rows: T, f: f)
        down.forward(act, x, rows: T, accumulate: true)
    }

    /// Backward of `forward`, given dx = ∂L/∂(its output x), the saved gateUp and xn (recomputed):
    /// weight gradients into `gradients`, dXn = ∂L/∂xn.
    func backward(
        dx: UnsafePointer<Float>, gateUp gu: UnsafePointer<Float>, xn: UnsafePointer<Float>,
        dXn: UnsafeMutablePointer<Float>, rows T: Int, work w: BackwardWorkspace, gradients G: UnsafeMutablePointer<Float>
    ) {
        let f = self.f, da = w.dAct.pointer, dgu = w.dGateUp.pointer
        // Inverts `down.forward(act, x, accumulate: true)`, act recomputed.
        Self.swiglu(gu, into: w.act.pointer, rows: T, f: f)
        down.backward(dx, x: w.act.pointer, dx: da, rows: T, gradients: G)
        // Inverts `swiglu`: act = silu(g) ⊙ u.
        Parallel.chunks(T, minimumPerChunk: 8) { from, to in
            for r in from..<to {
                mi_silu_mul_backward(gu + r * 2 * f, gu + r * 2 * f + f, da + r * f, dgu + r * 2 * f, dgu + r * 2 * f + f, f)
            }
        }
        // Inverts `gateUp.forward(xn, gu)`.
        gateUp.backward(dgu, x: xn, dx: dXn, rows: T, gradients: G)
    }

    /// act = silu(gate) ⊙ up for rows of [gate | up].
    static func swiglu(_ gu: UnsafePointer<Float>, into a: UnsafeMutablePointer<Float>, rows: Int, f: Int) {
        Parallel.chunks(rows, minimumPerChunk: 8) { from, to in
            for r in from..<to { mi_silu_mul(gu + r * 2 * f, gu + r * 2 * f + f, a + r * f, f) }
        }
    }
}

/// One pre-norm Llama block: x += Attention(RMSNorm(x)); x += MLP(RMSNorm(x)).
struct TransformerBlock {
    let attentionNorm: Int // offset of the RMSNorm weight [d]
    let attention: Attention
    let mlpNorm: Int
    let mlp: MLP
    let parameters: LlamaParameters

    /// x: [T, d], the residual stream, updated in place. `keep` receives what the backward needs
    /// (and then holds qkv, att and gateUp instead of the workspace).
    func forward(
        _ x: UnsafeMutablePointer<Float>, work w: Workspace, keep s: LayerActivations?, layout: StepLayout,
        rope: RoPE, cache: KVCache?, layer: Int
    ) {
        let T = layout.total, d = parameters.config.hiddenSize, eps = Float(parameters.config.rmsNormEps)
        s?.x.pointer.update(from: x, count: T * d)
        RMSNorm.forward(x, parameters.pointer(attentionNorm), w.xn.pointer, rows: T, dim: d, eps: eps, inverseRMS: s?.r1.pointer)
        attention.forward(
            xn: w.xn.pointer, qkv: (s?.qkv ?? w.qkv).pointer, att: (s?.att ?? w.att).pointer, x: x,
            layout: layout, rope: rope, cache: cache, layer: layer)
        s?.h.pointer.update(from: x, count: T * d)
        RMSNorm.forward(x, parameters.pointer(mlpNorm), w.xn.pointer, rows: T, dim: d, eps: eps, inverseRMS: s?.r2.pointer)
        mlp.forward(xn: w.xn.pointer, gateUp: (s?.gateUp ?? w.gateUp).pointer, act: w.act.pointer, x: x, rows: T)
    }

    /// Backward of `forward`: dx holds ∂L/∂(block output) and becomes ∂L/∂(block input); weight
    /// gradients go into `gradients`. The residual connections pass dx through unchanged; each
    /// RMSNorm backward adds its input gradient to it.
    func backward(
        _ dx: UnsafeMutablePointer<Float>, saved s: LayerActivations, layout: StepLayout, rope: RoPE,
        work w: BackwardWorkspace, gradients G: UnsafeMutablePointer<Float>
    ) {
        let T = layout.total, d = parameters.config.hiddenSize
        // Inverts the second half: x = h + MLP(RMSNorm(h)).
        RMSNorm.recompute(s.h.pointer, s.r2.pointer, parameters.pointer(mlpNorm), into: w.xn.pointer, rows: T, dim: d)
        mlp.backward(dx: dx, gateUp: s.gateUp.pointer, xn: w.xn.pointer, dXn: w.dXn.pointer, rows: T, work: w, gradients: G)
        RMSNorm.backward(
            s.h.pointer, parameters.pointer(mlpNorm), w.dXn.pointer, inverseRMS: s.r2.pointer, dx: dx,
            dw: G + mlpNorm, rows: T, dim: d)
        // Inverts the first half: h = x + Attention(RMSNorm(x)).
        RMSNorm.recompute(s.x.pointer, s.r1.pointer, parameters.pointer(attentionNorm), into: w.xn.pointer, rows: T, dim: d)
        attention.backward(
            dx: dx, qkv: s.qkv.pointer, att: s.att.pointer, xn: w.xn.pointer, dXn: w.dXn.pointer,
            layout: layout, rope: rope, work: w, gradients: G)
        RMSNorm.backward(
            s.x.pointer, parameters.pointer(attentionNorm), w.dXn.pointer, inverseRMS: s.r1.pointer, dx: dx,
            dw: G + attentionNorm, rows: T, dim: d)
    }
}
