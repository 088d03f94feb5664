#if canImport(Glibc)
import Glibc
#endif
import MIStages
import MIStream

/// Records generated, kept after dedupe and answered in one synthesis.
public struct DataReport: Sendable {
    public var generated = 0
    public var deduplicated = 0
    public var answered = 0
    public var trainingRecords = 0
    var cell: String { "\(generated) → \(deduplicated) → \(answered)" }
}

public struct RoundReport: Sendable {
    public var round: Int
    public var probing = DataReport()
    public var influences: [Double] = []
    public var pairs = 0
    public var promptsWithPairs = 0
    public var dpo: [JSONObject] = []
    public var montessoriData = DataReport()
    public var baselineData = DataReport()
    public var trainingRecords = 0
    public var montessoriSFT: [JSONObject] = []
    public var montessoriLoss: [Double] = []
    public var baselineLoss: [Double] = []
}

/// What the run did and found, as the table `make demo` ends with.
public struct RunReport: Sendable {
    public var split: (probe: Int, heldout: Int)?
    public var warmup = DataReport()
    public var rounds: [RoundReport] = []
    public var steps = (ran: 0, resumed: 0, skipped: 0)

    public var markdown: String {
        var rows: [(String, String)] = []
        if let split { rows.append(("reference records: probing / held out", "\(split.probe) / \(split.heldout)")) }
        if warmup.generated > 0 || warmup.answered > 0 {
            rows.append(("warm-up data: generated → deduplicated → answered", warmup.cell))
        }
        for r in rounds {
            let p = "round \(r.round): "
            rows.append((p + "probing set: generated → deduplicated → answered", r.probing.cell))
            let inf = r.influences.sorted()
            if !inf.isEmpty {
                rows.append((p + "influence: min / median / max", "\(f(inf.first!, 5)) / \(f(median(inf), 5)) / \(f(inf.last!, 5))"))
                rows.append((p + "helpful (> 0) / harmful (< 0) candidates",
                             "\(inf.filter { $0 > 0 }.count) / \(inf.filter { $0 < 0 }.count)"))
            }
            rows.append((p + "preference pairs (prompts with pairs)", "\(r.pairs) (\(r.promptsWithPairs))"))
            if let last = r.dpo.last {
                let acc = r.dpo.compactMap { try? $0.double("accuracy") }
                rows.append((p + "DPO: steps, first → last loss, mean accuracy",
                             "\(r.dpo.count), \(f((try? r.dpo[0].double("loss")) ?? .nan, 4)) → \(f((try? last.double("loss")) ?? .nan, 4)), "
                             + f(acc.reduce(0, +) / Double(max(acc.count, 1)), 2)))
            } else {
                rows.append((p + "DPO", "not run (no pairs): teacher unchanged"))
            }
            rows.append((p + "training data, Montessori teacher", r.montessoriData.cell))
            rows.append((p + "training data, original teacher", r.baselineData.cell))
            rows.append((p + "training records per student", "\(r.trainingRecords)"))
            if !r.montessoriLoss.isEmpty {
                let b = Evaluation.bootstrap(r.baselineLoss), m = Evaluation.bootstrap(r.montessoriLoss)
                let d = Evaluation.bootstrap(zip(r.montessoriLoss, r.baselineLoss).map { $0 - $1 })
                rows.append((p + "held-out loss: baseline student (95 % CI)", "\(f(b.mean, 4)) (\(f(b.low, 4))–\(f(b.high, 4)))"))
                rows.append((p + "held-out loss: Montessori student (95 % CI)", "\(f(m.mean, 4)) (\(f(m.low, 4))–\(f(m.high, 4)))"))
                let wins = zip(r.montessoriLoss, r.baselineLoss).filter { $0 < $1 }.count
                rows.append((p + "Montessori − baseline (paired 95 % CI); lower on", "\(f(d.mean, 4)) (\(f(d.low, 4))–\(f(d.high, 4))); "
                             + "\(wins) of \(r.montessoriLoss.count) records"))
            }
        }
        return "| stage | result |\n|---|---|\n" + rows.map { "| \($0.0) | \($0.1) |" }.joined(separator: "\n") + "\n"
    }

    func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    func f(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "–" }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([Int32(digits), x]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
