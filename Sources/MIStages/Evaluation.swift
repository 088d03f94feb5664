import MICore

/// Per-record losses and their summary: the mean with a percentile bootstrap confidence interval,
/// and for two models on the same records the paired difference.
public enum Evaluation {
    /// Each example's mean NLL over its completion tokens (the probe's definition).
    public static func losses(_ model: LoadedModel, _ examples: [TrainingExample], batch: Int = 8) -> [Double] {
        var out: [Double] = []
        for b0 in stride(from: 0, to: examples.count, by: batch) {
            let part = examples[b0..<min(b0 + batch, examples.count)]
            for lp in model.model.completionLogProbs(part.map { ($0.prompt, $0.completion) }) {
                out.append(-lp.reduce(0, +) / Double(max(lp.count, 1)))
            }
        }
        return out
    }

    public struct Interval: Sendable { public let mean: Double; public let low: Double; public let high: Double }

    /// Mean and 95 % percentile bootstrap interval (resampling records with replacement).
    public static func bootstrap(_ values: [Double], resamples: Int = 1000, seed: UInt64 = 7) -> Interval {
        let n = values.count
        let mean = values.reduce(0, +) / Double(max(n, 1))
        guard n > 1 else { return Interval(mean: mean, low: mean, high: mean) }
        var rng = SplitMix64(seed: seed)
        var means: [Double] = []
        means.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var s = 0.0
            for _ in 0..<n { s += values[Int(rng.next() % UInt64(n))] }
            means.append(s / Double(n))
        }
        means.sort()
        return Interval(mean: mean, low: means[Int(0.025 * Double(resamples))], high: means[min(resamples - 1, Int(0.975 * Double(resamples)))])
    }
}
