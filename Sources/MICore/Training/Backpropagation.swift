import CSupport
#if canImport(Glibc)
import Glibc
#endif

/// Loss and gradients of a Llama model on a batch of examples, in f32 on BLAS. The forward pass
/// keeps what the backward pass needs (layer inputs, normalisation factors, q/k/v after RoPE,
/// attention probabilities, MLP pre-activations); sequences are packed without padding, each
/// attending only to itself. Gradients accumulate into `gradients`, laid out like the parameters.
public final class Backpropagation {
    public let model: LlamaModel
    public let gradients: FloatBuffer

    public init(model: LlamaModel) {
        self.model = model
        gradients = FloatBuffer(count: model.parameters.count)
    }

    /// Activations of one layer kept for the backward pass. Normalised inputs, attention
    /// probabilities and the SwiGLU output are cheap to recompute and are not kept, which keeps
    /// a 256-token step of the default model under 2.5 GB with the optimizer state.
    final class LayerState {
        let x: FloatBuffer        // layer input (residual stream) [T, d]
        let r1: FloatBuffer       // 1/rms of x [T]
        let qkv: FloatBuffer      // q, k after RoPE and v [T, qkvDim]
        let att: FloatBuffer      // attention output before Wo [T, qDim]
        let h: FloatBuffer        // residual after attention [T, d]
        let r2: FloatBuffer       // 1/rms of h [T]
        let gateUp: FloatBuffer   // [T, 2f]
        init(total: Int, c: LlamaConfig) {
            let d = c.hiddenSize, qDim = c.numAttentionHeads * c.headDim, kvDim = c.numKeyValueHeads * c.headDim
            x = FloatBuffer(count: total * d, zeroed: false)
            r1 = FloatBuffer(count: total, zeroed: false)
            qkv = FloatBuffer(count: total * (qDim + 2 * kvDim), zeroed: false)
            att = FloatBuffer(count: total * qDim, zeroed: false)
            h = FloatBuffer(count: total * d, zeroed: false)
            r2 = FloatBuffer(count: total, zeroed: false)
            gateUp = FloatBuffer(count: total * 2 * c.intermediateSize, zeroed: false)
        }
    }

    /// Causal attention probabilities of one head of one sequence: p[n, n] = softmax(q·kᵀ/√hd).
    static func probabilities(q: UnsafePointer<Float>, k: UnsafePointer<Float>, stride: Int, n: Int, headDim: Int,
                              into p: UnsafeMutablePointer<Float>) {
        BLAS.matmulT(q, k, p, m: n, n: n, k: headDim, lda: stride, ldb: stride, ldc: n, alpha: 1 / Float(headDim).squareRoot())
        for i in 0..<n {
            _ = mi_softmax_inplace(p + i * n, i + 1)
            if i + 1 < n { (p + i * n + i + 1).update(repeating: 0, count: n - i - 1) }
        }
    }

    /// Adds the gradient of the batch's mean completion loss to `gradients` (scaled by `scale`,
    /// e.g. 1/accumulation steps) and returns the loss.
    @discardableResult
    public func accumulate(_ batch: [TrainingExample], scale: Float = 1) -> BatchLoss {
        accumulate(batch, scale: scale, weighting: nil)
    }

    /// The general form: after the forward pass, `weighting` receives each example's summed
    /// completion NLL and token count and returns the weight of each example's summed NLL in the
    /// loss to differentiate (DPO's weights depend on the policy's own log-probabilities).
    /// Without it, the loss is the mean NLL over all completion tokens.
    @discardableResult
    public func accumulate(_ batch: [TrainingExample], scale: Float = 1,
                           weighting: (([Double], [Int]) -> [Double])?) -> BatchLoss {
        let m = model, P = m.parameters, c = m.config
        let d = c.hiddenSize, hd = c.headDim, H = c.numAttentionHeads, Hkv = c.numKeyValueHeads
        let qDim = H * hd, kvDim = Hkv * hd, qkvDim = qDim + 2 * kvDim, f = c.intermediateSize, V = c.vocabSize
        let group = H / Hkv
        let lengths = batch.map { $0.prompt.count + $0.completion.count }
        let total = lengths.reduce(0, +)
        var starts: [Int] = []
        var positions: [Int] = []
        for L in lengths { starts.append(positions.count); positions += Array(0..<L) }
        m.rope.reserve(lengths.max() ?? 1)
        let eps = Float(c.rmsNormEps)
        let scaleQK = 1 / Float(hd).squareRoot()

        // Forward.
        let layers = P.layers.map { _ in LayerState(total: total, c: c) }
        let xn = FloatBuffer(count: total * d, zeroed: false)
        let act = FloatBuffer(count: total * f, zeroed: false)
        let longest = lengths.max() ?? 1
        var row = 0
        for e in batch {
            for t in e.tokens { (layers[0].x.pointer + row * d).update(from: P.pointer(P.embed) + Int(t) * d, count: d); row += 1 }
        }
        let final = FloatBuffer(count: total * d, zeroed: false)
        for (li, L) in P.layers.enumerated() {
            let s = layers[li]
            RMSNorm.forward(s.x.pointer, P.pointer(L.attnNorm), xn.pointer, rows: total, dim: d, eps: eps, inverseRMS: s.r1.pointer)
            BLAS.matmulT(xn.pointer, P.pointer(L.q), s.qkv.pointer, m: total, n: qkvDim, k: d)
            for r in 0..<total {
                m.rope.apply(s.qkv.pointer + r * qkvDim, heads: H, stride: hd, position: positions[r])
                m.rope.apply(s.qkv.pointer + r * qkvDim + qDim, heads: Hkv, stride: hd, position: positions[r])
            }
            Parallel.singleThreadedBLAS {
                Parallel.chunks(batch.count * H) { from, to in
                    let probs = FloatBuffer(count: longest * longest, zeroed: false)
                    for job in from..<to {
                        let si = job / H, head = job % H, n = lengths[si], base = starts[si]
                        let q = s.qkv.pointer + base * qkvDim + head * hd
                        let k = s.qkv.pointer + base * qkvDim + qDim + (head / group) * hd
                        let v = s.qkv.pointer + base * qkvDim + qDim + kvDim + (head / group) * hd
                        Self.probabilities(q: q, k: k, stride: qkvDim, n: n, headDim: hd, into: probs.pointer)
                        BLAS.matmul(probs.pointer, v, s.att.pointer + base * qDim + head * hd, m: n, n: hd, k: n, lda: n, ldb: qkvDim, ldc: qDim)
                    }
                }
            }
            s.h.pointer.update(from: s.x.pointer, count: total * d)
            BLAS.matmulT(s.att.pointer, P.pointer(L.o), s.h.pointer, m: total, n: d, k: qDim, accumulate: true)
            RMSNorm.forward(s.h.pointer, P.pointer(L.mlpNorm), xn.pointer, rows: total, dim: d, eps: eps, inverseRMS: s.r2.pointer)
            BLAS.matmulT(xn.pointer, P.pointer(L.gate), s.gateUp.pointer, m: total, n: 2 * f, k: d)
            Self.swiglu(s.gateUp, into: act, rows: total, f: f)
            let next = li + 1 < layers.count ? layers[li + 1].x : final
            next.pointer.update(from: s.h.pointer, count: total * d)
            BLAS.matmulT(act.pointer, P.pointer(L.down), next.pointer, m: total, n: d, k: f, accumulate: true)
        }
        let rF = FloatBuffer(count: total, zeroed: false)
        let xnF = FloatBuffer(count: total * d, zeroed: false)
        RMSNorm.forward(final.pointer, P.pointer(P.finalNorm), xnF.pointer, rows: total, dim: d, eps: eps, inverseRMS: rF.pointer)

        // Loss over completion positions; dlogits = (softmax − onehot) / N, in chunks of rows.
        var targets: [(row: Int, token: Int32, example: Int)] = []
        for (ei, e) in batch.enumerated() {
            for j in 0..<e.completion.count where e.prompt.count + j > 0 {
                targets.append((starts[ei] + e.prompt.count + j - 1, e.completion[j], ei))
            }
        }
        let n = max(targets.count, 1)
        var perSum = [Double](repeating: 0, count: batch.count)
        var perCount = [Int](repeating: 0, count: batch.count)
        let dxnF = FloatBuffer(count: total * d)
        let chunk = 128
        let logits = FloatBuffer(count: chunk * V, zeroed: false)
        let gathered = FloatBuffer(count: chunk * d, zeroed: false)
        let dGathered = FloatBuffer(count: chunk * d, zeroed: false)
        func computeLogits(_ part: ArraySlice<(row: Int, token: Int32, example: Int)>) {
            for (i, t) in part.enumerated() { (gathered.pointer + i * d).update(from: xnF.pointer + t.row * d, count: d) }
            BLAS.matmulT(gathered.pointer, P.pointer(P.head), logits.pointer, m: part.count, n: V, k: d)
        }
        var weights: [Float]
        if let weighting {
            // A first pass for the log-probabilities the weights depend on.
            for c0 in stride(from: 0, to: targets.count, by: chunk) {
                let part = targets[c0..<min(c0 + chunk, targets.count)]
                computeLogits(part)
                for (i, t) in part.enumerated() {
                    let lr = logits.pointer + i * V
                    perSum[t.example] -= Double(lr[Int(t.token)]) - mi_logsumexp(lr, V)
                    perCount[t.example] += 1
                }
            }
            weights = weighting(perSum, perCount).map { Float($0) * scale }
        } else {
            weights = [Float](repeating: scale / Float(n), count: batch.count)
        }
        for c0 in stride(from: 0, to: targets.count, by: chunk) {
            let part = targets[c0..<min(c0 + chunk, targets.count)]
            computeLogits(part)
            for (i, t) in part.enumerated() {
                let lr = logits.pointer + i * V
                if weighting == nil {
                    perSum[t.example] -= Double(lr[Int(t.token)]) - mi_logsumexp(lr, V)
                    perCount[t.example] += 1
                }
                // d(w·NLL)/dlogits = w · (softmax − onehot)
                _ = mi_softmax_inplace(lr, V)
                lr[Int(t.token)] -= 1
                let k = weights[t.example]
                for j in 0..<V { lr[j] *= k }
            }
            // dHead += dlogitsᵀ · x ; dx = dlogits · Head
            BLAS.matmulTA(logits.pointer, gathered.pointer, gradients.pointer + P.head, m: V, n: d, k: part.count, accumulate: true)
            BLAS.matmul(logits.pointer, P.pointer(P.head), dGathered.pointer, m: part.count, n: d, k: V)
            for (i, t) in part.enumerated() {
                let dst = dxnF.pointer + t.row * d, src = dGathered.pointer + i * d
                for j in 0..<d { dst[j] += src[j] }
            }
        }

        // Backward.
        let G = gradients.pointer
        let dx = FloatBuffer(count: total * d)
        RMSNorm.backward(final.pointer, P.pointer(P.finalNorm), dxnF.pointer, inverseRMS: rF.pointer, dx: dx.pointer,
                         dw: G + P.finalNorm, rows: total, dim: d)
        let dAct = FloatBuffer(count: total * f, zeroed: false)
        let dGateUp = FloatBuffer(count: total * 2 * f, zeroed: false)
        let dXn = FloatBuffer(count: total * d, zeroed: false)
        let dAtt = FloatBuffer(count: total * qDim, zeroed: false)
        let dQKV = FloatBuffer(count: total * qkvDim, zeroed: false)
        for li in stride(from: layers.count - 1, through: 0, by: -1) {
            let L = P.layers[li], s = layers[li]
            // MLP: out = h + Wdown·act; act = silu(g)⊙u.
            Self.swiglu(s.gateUp, into: act, rows: total, f: f)
            BLAS.matmulTA(dx.pointer, act.pointer, G + L.down, m: d, n: f, k: total, accumulate: true)
            BLAS.matmul(dx.pointer, P.pointer(L.down), dAct.pointer, m: total, n: f, k: d)
            let gu = s.gateUp.pointer, da = dAct.pointer, dgu = dGateUp.pointer
            Parallel.chunks(total, minimumPerChunk: 8) { from, to in
                for r in from..<to {
                    mi_silu_mul_backward(gu + r * 2 * f, gu + r * 2 * f + f, da + r * f, dgu + r * 2 * f, dgu + r * 2 * f + f, f)
                }
            }
            Self.normalize(s.h, s.r2, P.pointer(L.mlpNorm), into: xn, rows: total, dim: d)
            BLAS.matmulTA(dGateUp.pointer, xn.pointer, G + L.gate, m: 2 * f, n: d, k: total, accumulate: true)
            BLAS.matmul(dGateUp.pointer, P.pointer(L.gate), dXn.pointer, m: total, n: d, k: 2 * f)
            RMSNorm.backward(s.h.pointer, P.pointer(L.mlpNorm), dXn.pointer, inverseRMS: s.r2.pointer, dx: dx.pointer,
                             dw: G + L.mlpNorm, rows: total, dim: d)
            // Attention: h = x + Wo·att.
            BLAS.matmulTA(dx.pointer, s.att.pointer, G + L.o, m: d, n: qDim, k: total, accumulate: true)
            BLAS.matmul(dx.pointer, P.pointer(L.o), dAtt.pointer, m: total, n: qDim, k: d)
            dQKV.zero()
            // Heads sharing a key/value head write the same dK, dV rows: one job per (sequence, kv head).
            Parallel.singleThreadedBLAS {
                Parallel.chunks(batch.count * Hkv) { from, to in
                    let dP = FloatBuffer(count: longest * longest, zeroed: false)
                    let probs = FloatBuffer(count: longest * longest, zeroed: false)
                    for job in from..<to {
                        let si = job / Hkv, kvh = job % Hkv, n = lengths[si], base = starts[si]
                        let k = s.qkv.pointer + base * qkvDim + qDim + kvh * hd
                        let v = s.qkv.pointer + base * qkvDim + qDim + kvDim + kvh * hd
                        let dk = dQKV.pointer + base * qkvDim + qDim + kvh * hd
                        let dv = dQKV.pointer + base * qkvDim + qDim + kvDim + kvh * hd
                        for head in (kvh * group)..<((kvh + 1) * group) {
                            let dO = dAtt.pointer + base * qDim + head * hd
                            let q = s.qkv.pointer + base * qkvDim + head * hd
                            let p = probs.pointer
                            Self.probabilities(q: q, k: k, stride: qkvDim, n: n, headDim: hd, into: p)
                            let dq = dQKV.pointer + base * qkvDim + head * hd
                            // dV += Pᵀ·dO ; dP = dO·Vᵀ
                            BLAS.matmulTA(p, dO, dv, m: n, n: hd, k: n, lda: n, ldb: qDim, ldc: qkvDim, accumulate: true)
                            BLAS.matmulT(dO, v, dP.pointer, m: n, n: n, k: hd, lda: qDim, ldb: qkvDim, ldc: n)
                            // dS = P ⊙ (dP − Σ_j P·dP), then the 1/sqrt(hd) scale
                            for i in 0..<n {
                                let pr = p + i * n, dr = dP.pointer + i * n
                                var dot: Float = 0
                                for j in 0...i { dot += pr[j] * dr[j] }
                                for j in 0...i { dr[j] = pr[j] * (dr[j] - dot) * scaleQK }
                                if i + 1 < n { (dr + i + 1).update(repeating: 0, count: n - i - 1) }
                            }
                            // dQ = dS·K ; dK += dSᵀ·Q
                            BLAS.matmul(dP.pointer, k, dq, m: n, n: hd, k: n, lda: n, ldb: qkvDim, ldc: qkvDim)
                            BLAS.matmulTA(dP.pointer, q, dk, m: n, n: hd, k: n, lda: n, ldb: qkvDim, ldc: qkvDim, accumulate: true)
                        }
                    }
                }
            }
            // RoPE is a rotation: its backward rotates the gradients back.
            for r in 0..<total {
                m.rope.apply(dQKV.pointer + r * qkvDim, heads: H, stride: hd, position: positions[r], inverse: true)
                m.rope.apply(dQKV.pointer + r * qkvDim + qDim, heads: Hkv, stride: hd, position: positions[r], inverse: true)
            }
            Self.normalize(s.x, s.r1, P.pointer(L.attnNorm), into: xn, rows: total, dim: d)
            BLAS.matmulTA(dQKV.pointer, xn.pointer, G + L.q, m: qkvDim, n: d, k: total, accumulate: true)
            BLAS.matmul(dQKV.pointer, P.pointer(L.q), dXn.pointer, m: total, n: d, k: qkvDim)
            RMSNorm.backward(s.x.pointer, P.pointer(L.attnNorm), dXn.pointer, inverseRMS: s.r1.pointer, dx: dx.pointer,
                             dw: G + L.attnNorm, rows: total, dim: d)
        }
        // Embedding rows receive the gradient of their positions (except the padding token's,
        // as in transformers' nn.Embedding(padding_idx:)).
        row = 0
        let pad = c.padTokenId.map(Int32.init)
        for e in batch {
            for t in e.tokens {
                if t != pad {
                    let dst = G + P.embed + Int(t) * d, src = dx.pointer + row * d
                    for j in 0..<d { dst[j] += src[j] }
                }
                row += 1
            }
        }
        let count = targets.count
        return BatchLoss(mean: perSum.reduce(0, +) / Double(max(count, 1)),
                         perExampleMean: zip(perSum, perCount).map { $1 > 0 ? $0 / Double($1) : 0 },
                         perExampleSum: perSum, tokens: count)
    }

    public func zeroGradients() { gradients.zero() }

    /// act = silu(gate) ⊙ up for rows of [gate | up].
    static func swiglu(_ gateUp: FloatBuffer, into act: FloatBuffer, rows: Int, f: Int) {
        let gu = gateUp.pointer, a = act.pointer
        Parallel.chunks(rows, minimumPerChunk: 8) { from, to in
            for r in from..<to { mi_silu_mul(gu + r * 2 * f, gu + r * 2 * f + f, a + r * f, f) }
        }
    }

    /// RMSNorm output from its input and the saved 1/rms (exactly the forward's values).
    static func normalize(_ x: FloatBuffer, _ inverseRMS: FloatBuffer, _ w: UnsafePointer<Float>, into y: FloatBuffer, rows: Int, dim: Int) {
        for r in 0..<rows {
            let xr = x.pointer + r * dim, yr = y.pointer + r * dim, inv = inverseRMS[r]
            for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
        }
    }
}
