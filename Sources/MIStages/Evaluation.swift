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

    public struct Interval: Sendable {
        public let mean: Double
        public let low: Double
        public let high: Double
    }

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
        return percentiles(of: means, around: mean)
    }

    /// Σ weight · value / Σ weight with a 95 % percentile bootstrap interval, resampling (value,
    /// weight) records together; with weights of 1 it is `bootstrap` to the bit. For per-record
    /// mean losses weighted by their token counts it is the loss per token over all records.
    public static func weightedMean(_ values: [Double], weights: [Double], resamples: Int = 1000, seed: UInt64 = 7) -> Interval {
        precondition(values.count == weights.count)
        let n = values.count
        func ratio(_ s: Double, _ w: Double) -> Double { w > 0 ? s / w : .nan }
        let estimate = ratio(zip(values, weights).reduce(0) { $0 + $1.0 * $1.1 }, weights.reduce(0, +))
        guard n > 1 else { return Interval(mean: estimate, low: estimate, high: estimate) }
        var rng = SplitMix64(seed: seed)
        var statistics: [Double] = []
        statistics.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var s = 0.0, w = 0.0
            for _ in 0..<n {
                let i = Int(rng.next() % UInt64(n))
                s += values[i] * weights[i]
                w += weights[i]
            }
            statistics.append(ratio(s, w))
        }
        return percentiles(of: statistics, around: estimate)
    }

    /// The 2.5th and 97.5th percentiles of bootstrap statistics.
    static func percentiles(of statistics: [Double], around estimate: Double) -> Interval {
        let sorted = statistics.sorted(), n = sorted.count
        return Interval(mean: estimate, low: sorted[Int(0.025 * Double(n))], high: sorted[min(n - 1, Int(0.975 * Double(n)))])
    }

    /// mean(a) − mean(b) for two independent samples, with a 95 % percentile bootstrap interval
    /// (each sample resampled with replacement on its own).
    public static func differenceOfMeans(_ a: [Double], _ b: [Double], resamples: Int = 1000, seed: UInt64 = 7) -> Interval {
        contrastOfMeans([(1, a), (-1, b)], resamples: resamples, seed: seed)
    }

    /// Σ weight · mean(sample) over independent samples, with a 95 % percentile bootstrap interval
    /// (each sample resampled with replacement on its own, in order). With a sample of fewer than
    /// 2 values the interval is the point.
    public static func contrastOfMeans(_ terms: [(weight: Double, values: [Double])], resamples: Int = 1000, seed: UInt64 = 7) -> Interval {
        func mean(_ x: [Double]) -> Double { x.reduce(0, +) / Double(max(x.count, 1)) }
        let estimate = terms.reduce(0.0) { $0 + $1.weight * mean($1.values) }
        guard terms.allSatisfy({ $0.values.count > 1 }) else { return Interval(mean: estimate, low: estimate, high: estimate) }
        var rng = SplitMix64(seed: seed)
        var statistics: [Double] = []
        statistics.reserveCapacity(resamples)
        for _ in 0..<resamples {
            var total = 0.0
            for (weight, values) in terms {
                var sum = 0.0
                for _ in 0..<values.count { sum += values[Int(rng.next() % UInt64(values.count))] }
                total += weight * (sum / Double(values.count))
            }
            statistics.append(total)
        }
        return percentiles(of: statistics, around: estimate)
    }

    /// Spearman's rank correlation (ties get their mean rank); nil for fewer than 2 values or a
    /// constant input.
    public static func spearman(_ x: [Double], _ y: [Double]) -> Double? {
        precondition(x.count == y.count)
        guard x.count > 1 else { return nil }
        func ranks(_ v: [Double]) -> [Double] {
            let order = v.indices.sorted { v[$0] < v[$1] }
            var r = [Double](repeating: 0, count: v.count)
            var i = 0
            while i < order.count {
                var j = i
                while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
                for k in i...j { r[order[k]] = Double(i + j) / 2 + 1 }
                i = j + 1
            }
            return r
        }
        return pearson(ranks(x), ranks(y))
    }

    /// Spearman's rank correlation of (x, y) pairs with a 95 % percentile bootstrap interval
    /// (pairs resampled together; resamples without a correlation are left out); nil where the
    /// whole sample has none.
    public static func bootstrapSpearman(_ x: [Double], _ y: [Double], resamples: Int = 1000, seed: UInt64 = 7) -> Interval? {
        guard let estimate = spearman(x, y) else { return nil }
        var rng = SplitMix64(seed: seed)
        var statistics: [Double] = []
        statistics.reserveCapacity(resamples)
        let n = x.count
        for _ in 0..<resamples {
            let picks = (0..<n).map { _ in Int(rng.next() % UInt64(n)) }
            if let r = spearman(picks.map { x[$0] }, picks.map { y[$0] }) { statistics.append(r) }
        }
        guard !statistics.isEmpty else { return Interval(mean: estimate, low: estimate, high: estimate) }
        return percentiles(of: statistics, around: estimate)
    }

    /// Pearson correlation of x and y (nil: fewer than 2 values, or one side without spread).
    public static func pearson(_ x: [Double], _ y: [Double]) -> Double? {
        precondition(x.count == y.count)
        guard x.count > 1 else { return nil }
        let mx = x.reduce(0, +) / Double(x.count), my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0, sxx = 0.0, syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        guard sxx > 0, syy > 0 else { return nil }
        return sxy / (sxx * syy).squareRoot()
    }
}
