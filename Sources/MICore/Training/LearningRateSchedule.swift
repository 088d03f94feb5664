import CSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Learning-rate schedules as transformers' LambdaLR factories compute them: the multiplier for
/// optimizer step s (0-based, so the first step uses s = 0).
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// Linear warm-up, then constant.
        case constant
        /// Linear warm-up, then a half cosine from the peak down to minLRRatio · peak.
        case cosine
        /// Warmup-stable-decay (the schedule the Montessori-Instruct configuration uses): linear
        /// warm-up, a constant stretch, then a cosine decay to minLRRatio · peak over the last
        /// decayRatio of the steps.
        case wsd
    }

    public var kind: Kind
    public var peak: Double
    public var totalSteps: Int
    public var warmupRatio: Double = 0
    public var decayRatio: Double = 0.1
    public var minLRRatio: Double = 0

    public init(kind: Kind, peak: Double, totalSteps: Int, warmupRatio: Double = 0, decayRatio: Double = 0.1, minLRRatio: Double = 0) {
        self.kind = kind
        self.peak = peak
        self.totalSteps = max(totalSteps, 1)
        self.warmupRatio = warmupRatio
        self.decayRatio = decayRatio
        self.minLRRatio = minLRRatio
    }

    /// transformers rounds the warm-up with ceil(ratio · total).
    public var warmupSteps: Int { Int((warmupRatio * Double(totalSteps)).rounded(.up)) }
    public var decaySteps: Int { Int((decayRatio * Double(totalSteps)).rounded(.up)) }

    public func learningRate(step s: Int) -> Double { peak * multiplier(step: s) }

    public func multiplier(step s: Int) -> Double {
        let w = warmupSteps
        if s < w { return Double(s) / Double(max(1, w)) }
        switch kind {
        case .constant:
            return 1
        case .cosine:
            let progress = Double(s - w) / Double(max(1, totalSteps - w))
            let cosine = 0.5 * (1 + cos(Double.pi * min(progress, 1)))
            return minLRRatio + (1 - minLRRatio) * cosine
        case .wsd:
            let decayStart = totalSteps - decaySteps
            if s < decayStart { return 1 }
            let progress = Double(s - decayStart) / Double(max(1, decaySteps))
            let cosine = 0.5 * (1 + cos(Double.pi * min(progress, 1)))
            return minLRRatio + (1 - minLRRatio) * cosine
        }
    }
}

/// torch.nn.utils.clip_grad_norm_: the global L2 norm of all gradients; when it exceeds
/// `maxNorm`, every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ g: FloatBuffer, maxNorm: Double) -> Double {
    let parts = UnsafeMutablePointer<Double>.allocate(capacity: Parallel.workers)
    defer { parts.deallocate() }
    parts.initialize(repeating: 0, count: Parallel.workers)
    let box = SendablePointer(parts), gp = SendablePointer(g.pointer)
    let n = g.count, w = Parallel.workers
    Parallel.chunks(n, minimumPerChunk: 1 << 16) { from, to in
        // chunk index from its start (chunks are equal splits)
        box.p[from * w / max(n, 1)] = mi_sum_squares(gp.p + from, to - from)
    }
    var sum = 0.0
    for i in 0..<w { sum += parts[i] }
    let norm = sum.squareRoot()
    if maxNorm > 0 {
        let coef = Float(maxNorm / (norm + 1e-6))
        if coef < 1 { Parallel.chunks(n, minimumPerChunk: 1 << 16) { from, to in for i in from..<to { gp.p[i] *= coef } } }
    }
    return norm
}
