import Foundation
import MIStages
import Testing

/// How far influences on disjoint reference parts agree: correlation across records and the order
/// of a prompt's records.
@Suite struct ReferencePartAgreementTests {
    @Test func agreeingPartsCorrelateAndOrderAlike() {
        var a = ReferencePartAgreement()
        // Part 1 is an increasing function of part 0 (not linear): every order agrees, r < 1.
        for (i, x) in [0.1, 0.4, 0.2, 0.9, 0.5, 0.3].enumerated() { a.add(parts: [x, x * x * x], prompt: "p\(i / 3)") }
        let order = a.withinPromptOrder
        #expect(order.agree == 6 && order.pairs == 6)
        let r = a.correlation!
        #expect(r > 0.9 && r < 1)
    }

    @Test func opposedPartsAndTies() {
        var a = ReferencePartAgreement()
        a.add(parts: [1, -1], prompt: "x")
        a.add(parts: [2, -2], prompt: "x")
        a.add(parts: [3, -2], prompt: "x") // ties with the record before in part 1: not counted
        a.add(parts: [0, 5], prompt: nil) // in the correlation, in no prompt
        #expect(a.withinPromptOrder.agree == 0 && a.withinPromptOrder.pairs == 2)
        // Pearson of (1, 2, 3, 0) and (−1, −2, −2, 5) by hand: Σdxdy = −11, Σdx² = 5, Σdy² = 34.
        let r = a.correlation!
        #expect(abs(r - (-11 / (5.0 * 34).squareRoot())) < 1e-12)
        #expect(a.summary.contains("within-prompt order agrees for 0 of 2 pairs"), "\(a.summary)")
    }

    @Test func threePartsAverageThePairs() {
        var a = ReferencePartAgreement()
        for x in [1.0, 2, 3, 4] { a.add(parts: [x, x, -x], prompt: "p") }
        // Pairs (0,1): r = 1; (0,2) and (1,2): r = −1; mean −1/3.
        #expect(abs(a.correlation! + 1.0 / 3) < 1e-12)
        #expect(a.withinPromptOrder.agree == 6 && a.withinPromptOrder.pairs == 18)
        var flat = ReferencePartAgreement()
        for x in [1.0, 2, 3] { flat.add(parts: [x, 0], prompt: nil) }
        #expect(flat.correlation == nil)
    }
}

extension ReferencePartAgreementTests {
    /// Two parts that share a length trend and disagree on everything else: raw they correlate,
    /// length-adjusted they are opposed. The residuals are checked against a fit done by hand.
    @Test func lengthAdjustedAgreementIsOnTheResidualsOfEachPartsOwnFit() throws {
        let lengths = [10, 20, 40, 80, 160, 320]
        let noise = [0.3, -0.2, 0.1, -0.4, 0.25, -0.05]
        var a = ReferencePartAgreement()
        for (i, n) in lengths.enumerated() {
            let trend = log(Double(n))
            a.add(parts: [2 * trend + noise[i], trend - noise[i] + 5], prompt: "p\(i / 3)", responseLength: n)
        }
        #expect(a.correlation! > 0.9)
        let adjusted = try #require(a.lengthAdjusted)
        // Part 0 is 2·x + noise, part 1 is x − noise + 5: each fit removes its own line, so the
        // residuals are the noise less its own fit on x, and exactly opposed (r = −1).
        #expect(abs(adjusted.correlation! + 1) < 1e-9)
        #expect(adjusted.withinPromptOrder.agree == 0 && adjusted.withinPromptOrder.pairs == 6)
        var noLength = ReferencePartAgreement()
        noLength.add(parts: [1, 2], prompt: nil, responseLength: 5)
        noLength.add(parts: [2, 3], prompt: nil)
        #expect(noLength.lengthAdjusted == nil)
    }
}

@Suite struct CorrelationTests {
    @Test func spearmanIsPearsonOfRanks() {
        // Ranks (1, 2, 3, 4) and (1, 2, 4, 3): Σdd = 4, Σd² = 5 each, so 0.8.
        #expect(abs(Evaluation.spearman([1, 2, 3, 4], [10, 20, 30, 25])! - 0.8) < 1e-12)
        // A tie takes the mean of its ranks: (1.5, 1.5, 3) against (1, 2, 3).
        #expect(abs(Evaluation.spearman([5, 5, 9], [1, 2, 3])! - 0.75.squareRoot()) < 1e-12)
        #expect(Evaluation.pearson([1, 1, 1], [1, 2, 3]) == nil)
        #expect(abs(Evaluation.pearson([1, 2, 3], [2, 4, 7])! - 5 / (2 * 38.0 / 3).squareRoot()) < 1e-12)
    }
}

@Suite struct ContrastTests {
    /// A weighted sum of independent means: the estimate is exact, a difference of two means is
    /// `differenceOfMeans` to the bit, and the interval widens as the samples spread.
    @Test func contrastOfMeans() {
        let a = (0..<40).map { Double($0 % 7) }, b = (0..<30).map { Double($0 % 5) * 0.5 }, c = (0..<25).map { Double($0 % 3) - 1 }
        let mean = { (x: [Double]) in x.reduce(0, +) / Double(x.count) }
        let k = Evaluation.contrastOfMeans([(0.5, a), (-0.5, b), (1, c)])
        #expect(abs(k.mean - (0.5 * mean(a) - 0.5 * mean(b) + mean(c))) < 1e-12)
        #expect(k.low < k.mean && k.mean < k.high)
        let d = Evaluation.differenceOfMeans(a, b), e = Evaluation.contrastOfMeans([(1, a), (-1, b)])
        #expect(d.mean == e.mean && d.low == e.low && d.high == e.high)
        // Constant samples leave nothing to resample; a one-value sample gives the point.
        let flat = Evaluation.contrastOfMeans([(1, [2, 2, 2]), (-1, [0.5, 0.5])])
        #expect(flat.low == 1.5 && flat.high == 1.5 && flat.mean == 1.5)
        let point = Evaluation.contrastOfMeans([(1, a), (-1, [3])])
        #expect(point.low == point.mean && point.high == point.mean)
        // Twice the spread, twice the interval (same draws: the same seed and sizes).
        let wide = Evaluation.contrastOfMeans([(0.5, a.map { $0 * 2 }), (-0.5, b.map { $0 * 2 }), (1, c.map { $0 * 2 })])
        #expect(abs((wide.high - wide.low) - 2 * (k.high - k.low)) < 1e-9)
    }

    /// Σ w·x / Σ w: weights of 1 are the plain bootstrap to the bit; integer weights are the
    /// values repeated; a zero weight leaves a record out of the estimate.
    @Test func weightedMean() {
        let x = (0..<30).map { Double(($0 * 7) % 11) - 4 }
        let plain = Evaluation.bootstrap(x), ones = Evaluation.weightedMean(x, weights: x.map { _ in 1 })
        #expect(plain.mean == ones.mean && plain.low == ones.low && plain.high == ones.high)
        let w = (0..<30).map { Double($0 % 4) }
        let repeated = zip(x, w).flatMap { Array(repeating: $0.0, count: Int($0.1)) }
        let weighted = Evaluation.weightedMean(x, weights: w)
        #expect(abs(weighted.mean - repeated.reduce(0, +) / Double(repeated.count)) < 1e-12)
        #expect(weighted.low <= weighted.mean && weighted.mean <= weighted.high && weighted.low < weighted.high)
        let outlier = Evaluation.weightedMean(x + [1000], weights: w + [0])
        #expect(abs(outlier.mean - weighted.mean) < 1e-12)
    }
}
