import CSupport

/// AdamW exactly as torch.optim.AdamW (single-tensor path) computes it, in f32:
///   p ← p · (1 − lr·λ)
///   m ← β1·m + (1 − β1)·g ;  v ← β2·v + (1 − β2)·g²
///   p ← p − (lr / (1 − β1ᵗ)) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + ε)
public final class AdamW {
    public struct Hyperparameters: Sendable, Equatable, Codable {
        public var beta1: Double = 0.9
        public var beta2: Double = 0.999
        public var eps: Double = 1e-8
        public var weightDecay: Double = 0.01
        public init() {}
    }

    public var hyper: Hyperparameters
    public let m: FloatBuffer
    public let v: FloatBuffer
    /// Steps taken so far.
    public private(set) var step = 0

    public init(count: Int, hyper: Hyperparameters) {
        self.hyper = hyper
        m = FloatBuffer(count: count)
        v = FloatBuffer(count: count)
    }

    /// Restores saved state (a checkpoint's moments and step).
    public func restore(step: Int) { self.step = step }

    /// One update of `parameters` with `gradients` at learning rate `lr`.
    public func update(parameters: FloatBuffer, gradients: FloatBuffer, lr: Double) {
        precondition(parameters.count == m.count && gradients.count == m.count)
        step += 1
        parameters.changed()
        let k = constants(lr: lr, step: step)
        let p = SendablePointer(parameters.pointer), g = SendablePointer(gradients.pointer)
        let mm = SendablePointer(m.pointer), vv = SendablePointer(v.pointer)
        Parallel.chunks(m.count, minimumPerChunk: 1 << 16) { from, to in
            mi_adamw(
                p.p + from, g.p + from, mm.p + from, vv.p + from, to - from, k.decay, k.oneMinusB1, k.b2, k.oneMinusB2, k.bc2Sqrt, k.eps, k.stepSize)
        }
    }

    /// The parameters the next `update` would produce, leaving the moments and the step count as
    /// they are (a probe that restores the parameters afterwards need not restore the state).
    public func updateParametersOnly(parameters: FloatBuffer, gradients: FloatBuffer, lr: Double) {
        precondition(parameters.count == m.count && gradients.count == m.count)
        let k = constants(lr: lr, step: step + 1)
        parameters.changed()
        let p = SendablePointer(parameters.pointer), g = SendablePointer(gradients.pointer)
        let mm = SendablePointer(m.pointer), vv = SendablePointer(v.pointer)
        Parallel.chunks(m.count, minimumPerChunk: 1 << 16) { from, to in
            mi_adamw_params(
                p.p + from, g.p + from, mm.p + from, vv.p + from, to - from, k.decay, k.oneMinusB1, k.b2, k.oneMinusB2, k.bc2Sqrt, k.eps, k.stepSize)
        }
    }

    /// Σ direction·Δθ for the change Δθ (as stored in f32) the next `update` would make, changing
    /// nothing: the first-order local data influence reads p, g, m, v and the direction once.
    public func stepDot(parameters: FloatBuffer, gradients: FloatBuffer, lr: Double, direction: FloatBuffer) -> Double {
        precondition(parameters.count == m.count && gradients.count == m.count && direction.count == m.count)
        let k = constants(lr: lr, step: step + 1)
        let p = SendablePointer(parameters.pointer), g = SendablePointer(gradients.pointer)
        let mm = SendablePointer(m.pointer), vv = SendablePointer(v.pointer), d = SendablePointer(direction.pointer)
        let n = m.count, w = Parallel.workers
        var parts = [Double](repeating: 0, count: w)
        parts.withUnsafeMutableBufferPointer { buffer in
            let sink = SendableDoublePointer(buffer.baseAddress!)
            Parallel.chunks(w) { first, end in
                for c in first..<end {
                    let from = n * c / w, to = n * (c + 1) / w
                    sink.p[c] = mi_adamw_delta_dot(
                        p.p + from, g.p + from, mm.p + from, vv.p + from, d.p + from, to - from,
                        k.decay, k.oneMinusB1, k.b2, k.oneMinusB2, k.bc2Sqrt, k.eps, k.stepSize)
                }
            }
        }
        return parts.reduce(0, +)
    }

    struct Constants { let decay, oneMinusB1, b2, oneMinusB2, bc2Sqrt, eps, stepSize: Float }

    func constants(lr: Double, step: Int) -> Constants {
        // torch computes the bias corrections in Python floats (double), then uses them as scalars.
        let bc1 = 1 - pow(hyper.beta1, Double(step))
        return Constants(
            decay: Float(1 - lr * hyper.weightDecay), oneMinusB1: 1 - Float(hyper.beta1), b2: Float(hyper.beta2),
            oneMinusB2: 1 - Float(hyper.beta2), bc2Sqrt: Float((1 - pow(hyper.beta2, Double(step))).squareRoot()),
            eps: Float(hyper.eps), stepSize: Float(lr / bc1))
    }
}

struct SendableDoublePointer: @unchecked Sendable {
    let p: UnsafeMutablePointer<Double>
    init(_ p: UnsafeMutablePointer<Double>) { self.p = p }
}

#if canImport(Glibc)
    import Glibc
#endif
