import MICore
import MIStages
import Testing

/// The indexed dedupe keeps exactly what comparing every pair keeps.
@Suite struct DedupeTests {
    /// All-pairs reference: keep a text unless some kept text scores above t (or is identical).
    static func bruteForce(_ texts: [[String]], against: [[String]], threshold: Double) -> [Bool] {
        var vocab: [String: Int32] = [:]
        func ids(_ t: [String]) -> [Int32] {
            t.map { w in
                vocab[w]
                    ?? {
                        vocab[w] = Int32(vocab.count)
                        return Int32(vocab.count - 1)
                    }()
            }
        }
        var kept = against.map(ids)
        return texts.map { t in
            let x = ids(t)
            let drop = kept.contains { y in
                x == y || RougeL.fmeasure(lcs: RougeL.lcs(x, y), target: x.count, prediction: y.count) > threshold
            }
            if !drop { kept.append(x) }
            return !drop
        }
    }

    static func indexed(_ texts: [[String]], against: [[String]], threshold: Double) -> [Bool] {
        let d = Dedupe(threshold: threshold)
        for (i, a) in against.enumerated() { d.addAgainst(instruction: a.joined(separator: " "), id: "seed\(i)") }
        return texts.enumerated().map { i, t in d.decide(instruction: t.joined(separator: " "), id: "\(i)").keep }
    }

    @Test(arguments: [0.3, 0.5, 0.7, 0.9])
    func randomInputsMatchBruteForce(threshold: Double) {
        var rng = SplitMix64(seed: UInt64(threshold * 100))
        let vocab = (0..<12).map { "w\($0)" }
        for round in 0..<20 {
            // small vocabularies and lengths: many pairs land near the threshold
            let texts = (0..<120).map { _ in (0..<(1 + Int(rng.next() % 12))).map { _ in vocab[Int(rng.next() % UInt64(4 + round % 8))] } }
            let against = (0..<5).map { _ in (0..<(1 + Int(rng.next() % 8))).map { _ in vocab[Int(rng.next() % 6)] } }
            #expect(
                Self.indexed(texts, against: against, threshold: threshold) == Self.bruteForce(texts, against: against, threshold: threshold),
                "round \(round)")
        }
    }

    @Test func adversarialInputsMatchBruteForce() {
        // Repeated tokens, reversed orders, common words only, empty texts, exact repeats,
        // and lengths whose overlap bound sits exactly at the threshold.
        var texts: [[String]] = [[], [], ["the"], ["the", "the", "the"], ["the", "of", "and", "to"], ["to", "and", "of", "the"]]
        let base = "write a short poem about the sea and the sky at night".split(separator: " ").map(String.init)
        for k in 1...base.count {
            texts.append(Array(base.prefix(k)))
            texts.append(Array(base.suffix(k)))
            texts.append(base.reversed().prefix(k).map { $0 })
        }
        for n in [7, 10, 13, 20, 26] {
            texts.append((0..<n).map { "x\($0)" })
            texts.append((0..<n).map { "x\($0 % 3)" })
            texts.append((0..<(n * 7 / 10)).map { "x\($0)" } + ["y"])
        }
        texts += texts
        for t in [0.5, 0.7, 0.8] {
            #expect(Self.indexed(texts, against: [base], threshold: t) == Self.bruteForce(texts, against: [base], threshold: t))
        }
    }
}
