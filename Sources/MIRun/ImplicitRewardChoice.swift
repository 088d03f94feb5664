import MIStages
import MIStream

/// `montessori_set: chosen`: of each prompt's candidates (the original teacher's outputs), the
/// one a DPO'd teacher's implicit reward ranks first. DPO's implicit reward of an output y for a
/// prompt x is β·(log π_updated(y|x) − log π_original(y|x)) plus a term of x alone, so within
/// one prompt the log-probability difference ranks candidates as the reward does. The
/// log-probabilities are `mi-model logprobs --chat --completion-field raw` sums: the teacher's
/// whole output with the end of turn, the completion mi-dpo scores (not cut to its max length).
public enum ImplicitRewardChoice {
    /// A prompt's candidates, in input order.
    struct Prompt {
        var id: String
        var records: [JSONObject] = []
    }

    /// The records of `path` grouped by prompt_id, prompts in order of first appearance.
    static func prompts(_ path: String) throws -> [Prompt] {
        let r = RecordReader(paths: [path])
        var prompts: [Prompt] = [], index: [String: Int] = [:]
        while let rec = try r.next() {
            let id: String
            do { id = try rec.object.string("prompt_id") } catch { throw StreamError.badRecord(rec.location, message: "\(error)") }
            if let k = index[id] {
                prompts[k].records.append(rec.object)
            } else {
                index[id] = prompts.count
                prompts.append(Prompt(id: id, records: [rec.object]))
            }
        }
        return prompts
    }

    /// Each record's `sum` (mi-model logprobs) by id; a record without a finite sum is an error.
    static func sums(_ path: String) throws -> [String: Double] {
        let r = RecordReader(paths: [path])
        var out: [String: Double] = [:]
        while let rec = try r.next() {
            do {
                let sum = try rec.object.double("sum")
                guard sum.isFinite else { throw RunError("\"sum\" is not finite") }
                out[try rec.object.string("id")] = sum
            } catch { throw StreamError.badRecord(rec.location, message: "\(error)") }
        }
        return out
    }

    /// log π_updated − log π_original of every candidate of `prompt` (by the scores' ids).
    static func logRatios(_ prompt: Prompt, updated: [String: Double], original: [String: Double], files: (String, String)) throws -> [Double] {
        try prompt.records.map { o in
            let id = try o.string("id")
            guard let u = updated[id] else { throw RunError("\(files.0): no log-probability of candidate \(id)") }
            guard let b = original[id] else { throw RunError("\(files.1): no log-probability of candidate \(id)") }
            return u - b
        }
    }

    /// The `influence` of every candidate of `prompt`; a candidate without a finite one is an error.
    static func influences(_ prompt: Prompt, file: String) throws -> [Double] {
        try prompt.records.map { o in
            guard let v = try? o.double("influence"), v.isFinite else {
                throw RunError("\(file): candidate \((try? o.string("id")) ?? "?") of prompt \(prompt.id) has no finite \"influence\"")
            }
            return v
        }
    }

    /// The index of the largest value (the first among equals).
    static func argmax(_ values: [Double]) -> Int {
        values.indices.reduce(0) { values[$1] > values[$0] ? $1 : $0 }
    }

    /// The records of the first `count` prompts of `input` (all when fewer), in input order.
    public static func firstPrompts(_ input: String, out: String, count: Int) throws -> JSONObject {
        let kept = try prompts(input).prefix(count)
        let w = try JSONLWriter(path: out)
        for p in kept { for o in p.records { try w.write(o) } }
        try w.commit()
        return ["prompts": .number(JSONNumber(kept.count)), "records": .number(JSONNumber(kept.reduce(0) { $0 + $1.records.count }))]
    }

    /// Which candidate of a prompt `choose` keeps.
    public enum Rule: Sendable {
        /// The first (a prompt's samples come in random order: a random candidate).
        case first
        /// The largest log π_updated − log π_original, from the two teachers' logprobs files.
        case logRatio(updated: String, original: String)
        /// The largest measured `influence` (probed candidates): the oracle of the other rules.
        case influence

        /// The step setting that names the rule (the files are the step's inputs).
        public var setting: String {
            switch self {
            case .first: return "first candidate of each prompt"
            case .logRatio: return "largest log-probability difference"
            case .influence: return "largest influence"
            }
        }
    }

    /// One candidate per prompt of `candidates`, unchanged, by `rule`.
    public static func choose(candidates: String, rule: Rule, out: String) throws -> JSONObject {
        let all = try prompts(candidates)
        var picks = [Int](repeating: 0, count: all.count)
        switch rule {
        case .first: break
        case let .logRatio(updatedPath, originalPath):
            let updated = try sums(updatedPath), original = try sums(originalPath)
            for (k, p) in all.enumerated() {
                picks[k] = argmax(try logRatios(p, updated: updated, original: original, files: (updatedPath, originalPath)))
            }
        case .influence:
            for (k, p) in all.enumerated() { picks[k] = argmax(try influences(p, file: candidates)) }
        }
        let w = try JSONLWriter(path: out)
        for (p, k) in zip(all, picks) { try w.write(p.records[k]) }
        try w.commit()
        return ["records": .number(JSONNumber(all.count)), "not_first": .number(JSONNumber(picks.filter { $0 > 0 }.count))]
    }

    /// What a teacher's choice among probed candidates gains over a random one (`gain`): over the
    /// prompts with at least two candidates, a candidate's influence minus its prompt's mean.
    public struct Gain: Sendable {
        /// The candidate the implicit reward ranks first, with its bootstrap interval over prompts.
        public var chosen: Evaluation.Interval
        /// The first candidate (the baseline's choice), likewise.
        public var first: Evaluation.Interval
        /// Chosen minus first, paired by prompt: what the choice adds over the baseline's.
        public var chosenVsFirst: Evaluation.Interval
        /// The most influential candidate's mean (the most any choice can gain).
        public var best: Double
        public var prompts: Int
        /// Prompts where the implicit reward's choice is a most influential candidate.
        public var sameAsBest: Int
        /// The same with the answers' length taken out; nil unless every candidate has a response.
        public var lengthAdjusted: LengthAdjusted?
        /// Spearman's correlation of the log-probability difference with influence over all the
        /// candidates (every prompt's, pooled), bootstrap over candidates; nil without spread.
        public var spearman: Evaluation.Interval?
        /// The chosen candidate's influence − its prompt's mean, per prompt in the file's order (to
        /// pair two teachers' choices of the same candidates).
        public var chosenByPrompt: [Double] = []

        /// `a`'s choice − `b`'s, paired by prompt (two teachers' choices of the same candidates),
        /// with its bootstrap interval; nil unless both exist over the same prompts.
        public static func paired(_ a: Gain?, _ b: Gain?) -> Evaluation.Interval? {
            guard let a, let b, a.chosenByPrompt.count == b.chosenByPrompt.count, !a.chosenByPrompt.isEmpty else { return nil }
            return Evaluation.bootstrap(zip(a.chosenByPrompt, b.chosenByPrompt).map { $0 - $1 })
        }
    }

    /// A `Gain` on influence less one least-squares line on ln(response characters) fitted over
    /// all the candidates (mi-pair's length fit). `best` is the residual of the candidate with the
    /// largest raw influence, so here it is no bound on what a choice can gain.
    public struct LengthAdjusted: Sendable {
        public var chosen: Evaluation.Interval
        public var first: Evaluation.Interval
        public var chosenVsFirst: Evaluation.Interval
        public var best: Evaluation.Interval
        /// Spearman's correlation of the log-probability difference with the influence residual.
        public var spearman: Evaluation.Interval?
        /// Mean response characters of the chosen, the first and the most influential candidates.
        public var characters: (chosen: Double, first: Double, best: Double)
    }

    /// One prompt's chosen, first and most influential candidates' values.
    struct Picked {
        var chosen: Double, first: Double, best: Double
    }

    /// The choice on probed candidates (`scored`, the original teacher's): what the candidate
    /// `updated`'s implicit reward ranks first gains in influence over its prompt's mean, what the
    /// first gains, and what the most influential gains, and how far the implicit reward ranks all
    /// the candidates by influence. Nil without prompts of at least two.
    public static func gain(scored: String, updated: String, original: String) throws -> Gain? {
        let u = try sums(updated), b = try sums(original)
        let all = try prompts(scored)
        let influence = try all.map { try influences($0, file: scored) }
        let lengths = all.map { $0.records.map(Pairing.responseCharacters) }
        let fit = lengths.allSatisfy { !$0.contains(nil) } ? Pairing.LengthFit(zip(influence.joined(), lengths.joined().map { $0! })) : nil
        // Each prompt's influences less the length line, where there is one.
        let residuals = fit.map { fit in zip(influence, lengths).map { v, n in zip(v, n).map { fit.residual(influence: $0, length: $1!) } } }
        let ratios = try all.map { try logRatios($0, updated: u, original: b, files: (updated, original)) }
        var raw: [Picked] = [], adjusted: [Picked] = [], chars: [Picked] = [], same = 0
        for (k, p) in all.enumerated() where p.records.count >= 2 {
            let v = influence[k]
            let chosen = argmax(ratios[k]), best = argmax(v)
            if v[chosen] == v[best] { same += 1 }
            func picked(_ x: [Double]) -> Picked {
                let mean = x.reduce(0, +) / Double(x.count)
                return Picked(chosen: x[chosen] - mean, first: x[0] - mean, best: x[best] - mean)
            }
            raw.append(picked(v))
            if let residuals {
                let n = lengths[k].map { Double($0!) }
                adjusted.append(picked(residuals[k]))
                chars.append(Picked(chosen: n[chosen], first: n[0], best: n[best]))
            }
        }
        guard !raw.isEmpty else { return nil }
        let mean = { (x: [Double]) in x.reduce(0, +) / Double(x.count) }
        var g = Gain(
            chosen: Evaluation.bootstrap(raw.map(\.chosen)), first: Evaluation.bootstrap(raw.map(\.first)),
            chosenVsFirst: Evaluation.bootstrap(raw.map { $0.chosen - $0.first }), best: mean(raw.map(\.best)), prompts: raw.count,
            sameAsBest: same, spearman: Evaluation.bootstrapSpearman(Array(ratios.joined()), Array(influence.joined())),
            chosenByPrompt: raw.map(\.chosen))
        if let residuals {
            g.lengthAdjusted = LengthAdjusted(
                chosen: Evaluation.bootstrap(adjusted.map(\.chosen)), first: Evaluation.bootstrap(adjusted.map(\.first)),
                chosenVsFirst: Evaluation.bootstrap(adjusted.map { $0.chosen - $0.first }), best: Evaluation.bootstrap(adjusted.map(\.best)),
                spearman: Evaluation.bootstrapSpearman(Array(ratios.joined()), Array(residuals.joined())),
                characters: (mean(chars.map(\.chosen)), mean(chars.map(\.first)), mean(chars.map(\.best))))
        }
        return g
    }
}
