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
    /// prompts with at least two candidates, influence minus the prompt's mean influence.
    public struct Gain: Sendable {
        /// The candidate the implicit reward ranks first, with its bootstrap interval over prompts.
        public var chosen: Evaluation.Interval
        /// The first candidate (the baseline's choice), likewise.
        public var first: Evaluation.Interval
        /// The most influential candidate's mean (the most any choice can gain).
        public var best: Double
        public var prompts: Int
        /// Prompts where the implicit reward's choice is the most influential candidate.
        public var sameAsBest: Int
        /// The same three with what the answers' length explains taken out (influence less one
        /// least-squares line on ln(response characters) over all the candidates, mi-pair's
        /// length fit), and the three choices' mean response characters; nil where a candidate
        /// has no response.
        public var lengthAdjusted: (chosen: Evaluation.Interval, first: Evaluation.Interval, best: Evaluation.Interval)?
        public var characters: (chosen: Double, first: Double, best: Double)?
    }

    /// The choice on probed candidates (`scored`, the original teacher's): what the candidate
    /// `updated`'s implicit reward ranks first gains in influence over its prompt's mean, what the
    /// first gains, and what the most influential gains. Nil without prompts of two candidates.
    public static func gain(scored: String, updated: String, original: String) throws -> Gain? {
        let u = try sums(updated), b = try sums(original)
        let all = try prompts(scored)
        var fit: Pairing.LengthFit? = Pairing.LengthFit()
        for p in all {
            for (o, v) in zip(p.records, try influences(p, file: scored)) {
                guard let n = Pairing.responseCharacters(o) else {
                    fit = nil
                    break
                }
                fit?.add(influence: v, length: n)
            }
        }
        // Per prompt with a choice: [chosen, first, best] of influence − mean, of the residual
        // − its mean, and of the response characters.
        var raw: [[Double]] = [], adjusted: [[Double]] = [], chars: [[Double]] = [], same = 0
        for p in all where p.records.count >= 2 {
            let influence = try influences(p, file: scored)
            let picks = [argmax(try logRatios(p, updated: u, original: b, files: (updated, original))), 0, argmax(influence)]
            if influence[picks[0]] == influence[picks[2]] { same += 1 }
            let centred = { (v: [Double]) in picks.map { v[$0] - v.reduce(0, +) / Double(v.count) } }
            raw.append(centred(influence))
            if let fit {
                let lengths = p.records.map { Pairing.responseCharacters($0)! }
                adjusted.append(centred(zip(influence, lengths).map { fit.residual(influence: $0, length: $1) }))
                chars.append(picks.map { Double(lengths[$0]) })
            }
        }
        guard !raw.isEmpty else { return nil }
        let column = { (rows: [[Double]], k: Int) in rows.map { $0[k] } }
        let mean = { (v: [Double]) in v.reduce(0, +) / Double(v.count) }
        var g = Gain(
            chosen: Evaluation.bootstrap(column(raw, 0)), first: Evaluation.bootstrap(column(raw, 1)), best: mean(column(raw, 2)),
            prompts: raw.count, sameAsBest: same)
        if !adjusted.isEmpty {
            g.lengthAdjusted = (
                Evaluation.bootstrap(column(adjusted, 0)), Evaluation.bootstrap(column(adjusted, 1)), Evaluation.bootstrap(column(adjusted, 2))
            )
            g.characters = (mean(column(chars, 0)), mean(column(chars, 1)), mean(column(chars, 2)))
        }
        return g
    }
}
