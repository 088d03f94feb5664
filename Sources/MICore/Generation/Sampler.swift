import CSupport

/// Sampling settings of one request, with vLLM's meanings (the paper generates with vLLM).
public struct SamplingParameters: Sendable, Equatable {
    /// 0 is greedy.
    public var temperature: Double = 1
    /// Nucleus sampling: the smallest set of most likely tokens whose probability reaches top-p.
    public var topP: Double = 1
    /// Keep only the k most likely tokens; 0 keeps all.
    public var topK: Int = 0
    /// Subtracted from the logit of every token already generated.
    public var presencePenalty: Double = 0
    /// Subtracted once per earlier occurrence in the generated tokens.
    public var frequencyPenalty: Double = 0
    public var maxTokens: Int = 256
    public var seed: UInt64 = 0
    /// Generation ends at these token ids (not included in the output).
    public var stopTokens: Set<Int32> = []
    /// Generation ends at the first of these strings (not included in the output).
    public var stopStrings: [String] = []

    public init() {}
}

/// A small, fast PRNG (SplitMix64): one per request, so a seed gives the same tokens whatever
/// else runs in the same batch.
public struct SplitMix64: Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1p-53 }
}

/// Picks the next token from one row of logits.
struct Sampler {
    let parameters: SamplingParameters
    var rng: SplitMix64
    /// How often each token was generated so far (for the penalties).
    var counts: [Int32: Int] = [:]

    init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    mutating func sample(_ logits: UnsafeMutablePointer<Float>, vocab: Int) -> Int32 {
        let p = parameters
        if p.presencePenalty != 0 || p.frequencyPenalty != 0 {
            for (t, n) in counts {
                logits[Int(t)] -= Float(p.presencePenalty) + Float(p.frequencyPenalty) * Float(n)
            }
        }
        let token: Int32
        if p.temperature <= 0 {
            var best = 0
            for i in 1..<vocab where logits[i] > logits[best] { best = i }
            token = Int32(best)
        } else {
            token = sampleStochastic(logits, vocab: vocab)
        }
        counts[token, default: 0] += 1
        return token
    }

    private mutating func sampleStochastic(_ logits: UnsafeMutablePointer<Float>, vocab: Int) -> Int32 {
        let p = parameters
        let invT = Float(1 / p.temperature)
        for i in 0..<vocab { logits[i] *= invT }
        _ = mi_softmax_inplace(logits, vocab)
        var pMax: Float = 0
        for i in 0..<vocab { pMax = max(pMax, logits[i]) }
        // Only tokens above a threshold can be in the top k or the nucleus: lower the threshold
        // until the candidates hold k tokens (with top-k) or top-p of the mass (top-p alone), then
        // sort just those. Without either, every token is a candidate.
        let wantMass = p.topP >= 1 ? 1.0 : p.topP
        var threshold: Float = (p.topK > 0 || wantMass < 1) ? pMax / 1024 : 0
        var candidates: [(Int32, Float)] = []
        while true {
            candidates.removeAll(keepingCapacity: true)
            var mass: Double = 0
            for i in 0..<vocab where logits[i] >= threshold {
                candidates.append((Int32(i), logits[i]))
                mass += Double(logits[i])
            }
            let done = p.topK > 0 ? candidates.count >= p.topK : mass >= wantMass
            if done || threshold == 0 { break }
            threshold = threshold < 1e-30 ? 0 : threshold / 1024
        }
        candidates.sort { $0.1 > $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        if p.topK > 0 && candidates.count > p.topK { candidates.removeLast(candidates.count - p.topK) }
        if wantMass < 1 {
            // Renormalise over the top-k set, then keep the smallest prefix reaching top-p.
            let total = candidates.reduce(0.0) { $0 + Double($1.1) }
            var cumulative = 0.0
            var keep = candidates.count
            for (i, c) in candidates.enumerated() {
                cumulative += Double(c.1) / total
                if cumulative >= wantMass {
                    keep = i + 1
                    break
                }
            }
            candidates.removeLast(candidates.count - keep)
        }
        let total = candidates.reduce(0.0) { $0 + Double($1.1) }
        var u = rng.nextUnit() * total
        for c in candidates {
            u -= Double(c.1)
            if u < 0 { return c.0 }
        }
        return candidates.last!.0
    }
}
