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
        let b1 = Float(hyper.beta1), b2 = Float(hyper.beta2), eps = Float(hyper.eps)
        let decay = Float(1 - lr * hyper.weightDecay)
        // torch computes the bias corrections in Python floats (double), then uses them as scalars.
        let bc1 = 1 - pow(hyper.beta1, Double(step))
        let bc2Sqrt = Float((1 - pow(hyper.beta2, Double(step))).squareRoot())
        let stepSize = Float(lr / bc1)
        let p = SendablePointer(parameters.pointer), g = SendablePointer(gradients.pointer)
        let mm = SendablePointer(m.pointer), vv = SendablePointer(v.pointer)
        Parallel.chunks(m.count, minimumPerChunk: 1 << 16) { from, to in
            mi_adamw(p.p + from, g.p + from, mm.p + from, vv.p + from, to - from, decay, 1 - b1, b2, 1 - b2, bc2Sqrt, eps, stepSize)
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
