import MIStages
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

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
    public init(round: Int) { self.round = round }
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
    /// Response tokens of each held-out record (mi-eval's "tokens"; empty for an eval file
    /// without them), for the token-weighted differences.
    public var heldoutTokens: [Double] = []
    public var experiment = ExperimentReport()
    /// How the Montessori set was made (`montessori_set`).
    public var montessoriSet = RunConfig.MontessoriSet.written

    /// The two crossings of experiment.mechanism_crossed (each teacher's instructions answered by
    /// the other): the step label (`mechanism-LABEL-…`) and how reports name the cell.
    static let crossings = [
        (label: "montessori-instructions", name: "Montessori instructions, original answers"),
        (label: "montessori-answers", name: "original instructions, Montessori answers"),
    ]
    /// The fresh-candidate sets of experiment.mechanism_crossed: both teachers' own, and the crossings.
    static let crossedCells = ["original", "montessori"] + crossings.map(\.label)

    /// The mechanism split by the 2 × 2 crossing (experiment.mechanism_crossed): what the updated
    /// teacher's instructions add to the mean fresh influence, averaged over both answering
    /// teachers; what its answers add, averaged over both instruction sets; and the interaction
    /// (how far the two effects are not additive). Nil without the four sets.
    public var mechanismSplit: (instructions: Evaluation.Interval, answers: Evaluation.Interval, interaction: Evaluation.Interval)? {
        let cells = Self.crossedCells.compactMap { experiment.fresh[$0] }
        guard cells.count == 4 else { return nil }
        let (oo, mm, mo, om) = (cells[0], cells[1], cells[2], cells[3]) // instructions, answers: o original, m Montessori
        return (
            Evaluation.contrastOfMeans([(0.5, mm), (-0.5, om), (0.5, mo), (-0.5, oo)]),
            Evaluation.contrastOfMeans([(0.5, mm), (-0.5, mo), (0.5, om), (-0.5, oo)]),
            Evaluation.contrastOfMeans([(1, mm), (-1, mo), (-1, om), (1, oo)])
        )
    }

    /// result.json's `mechanism_split` (nil without the crossing's four sets).
    func mechanismSplitJSON() -> JSONValue? {
        guard let split = mechanismSplit else { return nil }
        let num = JSONNumber.value, interval = Self.intervalEntries
        let fresh = experiment.fresh
        var m = JSONObject()
        m["instructions"] = .object(JSONObject(uniqueKeysAndValues: interval(split.instructions)))
        m["answers"] = .object(JSONObject(uniqueKeysAndValues: interval(split.answers)))
        m["interaction"] = .object(JSONObject(uniqueKeysAndValues: interval(split.interaction)))
        m["mean_influence"] = .object(
            JSONObject(uniqueKeysAndValues: Self.crossedCells.map { ($0, num(fresh[$0]!.reduce(0, +) / Double(max(fresh[$0]!.count, 1)))) }))
        m["candidates"] = .object(JSONObject(uniqueKeysAndValues: Self.crossedCells.map { ($0, .number(JSONNumber(fresh[$0]!.count))) }))
        return .object(m)
    }

    /// Fresh candidates of teacher `a` against those of `b` with what the answers' length explains
    /// taken out: one least-squares line of influence on ln(response characters) over both sets
    /// (mi-pair's length fit), then the difference of the two sets' mean residuals with its
    /// bootstrap interval, and each set's mean response length. Nil without lengths.
    func lengthAdjustedFresh(_ a: String, _ b: String) -> (diff: Evaluation.Interval, chars: (Double, Double))? {
        let fresh = experiment.fresh, lengths = experiment.freshLength
        guard let ia = fresh[a], let ib = fresh[b], let la = lengths[a], let lb = lengths[b], la.count == ia.count, lb.count == ib.count,
            !ia.isEmpty, !ib.isEmpty
        else { return nil }
        let fit = Pairing.LengthFit(zip(ia + ib, la + lb))
        let residuals = { (i: [Double], l: [Int]) in zip(i, l).map { fit.residual(influence: $0, length: $1) } }
        let mean = { (l: [Int]) in Double(l.reduce(0, +)) / Double(l.count) }
        return (Evaluation.differenceOfMeans(residuals(ia, la), residuals(ib, lb)), (mean(la), mean(lb)))
    }

    /// What training did to each student: its held-out loss minus that of the model it started
    /// from, paired by record (negative: the training data helped), and on how many records it is
    /// lower; nil without the start's losses.
    func studentsVersusStart() -> (startLoss: Double, students: [(label: String, loss: [Double], diff: Evaluation.Interval, betterOn: Int)])? {
        guard let start = experiment.startLoss, start.count == baselineLoss.count, !start.isEmpty else { return nil }
        var students = [("baseline", baselineLoss), ("montessori", montessoriLoss)]
        if let c = experiment.controlLoss { students.append(("control", c)) }
        return (
            start.reduce(0, +) / Double(start.count),
            students.filter { $0.1.count == start.count }.map { label, loss in
                (label, loss, Evaluation.bootstrap(zip(loss, start).map { $0 - $1 }), zip(loss, start).filter { $0 < $1 }.count)
            }
        )
    }

    /// `students_vs_start` of result.json.
    func studentsVersusStartJSON() -> JSONValue? {
        guard let v = studentsVersusStart(), let start = experiment.startLoss else { return nil }
        var o = JSONObject()
        o["start_loss"] = JSONNumber.value(v.startLoss)
        for s in v.students {
            var d = JSONObject(uniqueKeysAndValues: Self.intervalEntries(s.diff))
            d["better_on"] = .number(JSONNumber(s.betterOn))
            if let w = tokenWeighted(s.loss, start) { d["token_weighted"] = w }
            o[s.label] = .object(d)
        }
        return .object(o)
    }

    /// The paired difference a − b of per-record held-out losses weighted by the records' response
    /// tokens (the difference of the loss per token over all records), with its bootstrap
    /// interval; nil without token counts.
    static func tokenWeighted(_ a: [Double], _ b: [Double], tokens: [Double]) -> Evaluation.Interval? {
        guard !tokens.isEmpty, tokens.count == a.count, a.count == b.count else { return nil }
        return Evaluation.weightedMean(zip(a, b).map { $0 - $1 }, weights: tokens)
    }

    /// `tokenWeighted(_:_:tokens:)` over this round's held-out records.
    func tokenWeightedInterval(_ a: [Double], _ b: [Double]) -> Evaluation.Interval? {
        Self.tokenWeighted(a, b, tokens: heldoutTokens)
    }

    /// `tokenWeighted(_:_:tokens:)` as result.json writes it.
    static func tokenWeightedJSON(_ a: [Double], _ b: [Double], tokens: [Double]) -> JSONValue? {
        tokenWeighted(a, b, tokens: tokens).map { .object(JSONObject(uniqueKeysAndValues: intervalEntries($0))) }
    }

    /// `tokenWeightedInterval` as result.json writes it.
    func tokenWeighted(_ a: [Double], _ b: [Double]) -> JSONValue? {
        Self.tokenWeightedJSON(a, b, tokens: heldoutTokens)
    }

    /// An interval as result.json writes it: "diff" (the estimate) and "ci" ([low, high]).
    static func intervalEntries(_ i: Evaluation.Interval) -> [(String, JSONValue)] {
        [("diff", JSONNumber.value(i.mean)), ("ci", .array([JSONNumber.value(i.low), JSONNumber.value(i.high)]))]
    }

    /// result.json's `mechanism_chosen` and `training_choice`: each choosing teacher's gain.
    static func gainsJSON(_ all: [String: ImplicitRewardChoice.Gain]) -> JSONValue {
        let num = JSONNumber.value
        func interval(_ i: Evaluation.Interval) -> JSONValue { .object(JSONObject(uniqueKeysAndValues: intervalEntries(i))) }
        var m = JSONObject()
        for (label, g) in all.sorted(by: { $0.key < $1.key }) {
            var c = JSONObject(uniqueKeysAndValues: intervalEntries(g.chosen))
            c["first"] = interval(g.first)
            c["chosen_vs_first"] = interval(g.chosenVsFirst)
            c["best"] = num(g.best)
            c["prompts"] = .number(JSONNumber(g.prompts))
            c["same_as_best"] = .number(JSONNumber(g.sameAsBest))
            func correlation(_ i: Evaluation.Interval) -> JSONValue {
                .object(JSONObject(uniqueKeysAndValues: [("value", num(i.mean)), ("ci", .array([num(i.low), num(i.high)]))]))
            }
            if let r = g.spearman { c["spearman"] = correlation(r) }
            if let a = g.lengthAdjusted {
                c["length_adjusted"] = .object(
                    JSONObject(
                        uniqueKeysAndValues: [
                            ("chosen", interval(a.chosen)), ("first", interval(a.first)), ("chosen_vs_first", interval(a.chosenVsFirst)),
                            ("best", interval(a.best)),
                        ] + (a.spearman.map { [("spearman", correlation($0))] } ?? [])))
                let n = a.characters
                c["response_chars"] = .object(
                    JSONObject(uniqueKeysAndValues: [("chosen", num(n.chosen)), ("first", num(n.first)), ("best", num(n.best))]))
            }
            m[label] = .object(c)
        }
        // The updated teacher's choice against the random-label control's, paired by prompt:
        // what the influence labels add to the choice.
        if let d = ImplicitRewardChoice.Gain.paired(all["montessori"], all["control"]) { m["montessori_vs_control"] = interval(d) }
        return .object(m)
    }

    /// The round's findings as `result.json`: outcome (Montessori − baseline held-out loss,
    /// paired), mechanism (updated − original teacher's mean fresh-candidate influence), control
    /// (random-label teacher − original), the teacher's held-out pairs and the probe's agreement.
    public func resultJSON(seed: Int) -> JSONObject {
        let num = JSONNumber.value, interval = Self.intervalEntries
        var o = JSONObject()
        o["seed"] = .number(JSONNumber(seed))
        o["round"] = .number(JSONNumber(round))
        if !montessoriLoss.isEmpty {
            let d = Evaluation.bootstrap(zip(montessoriLoss, baselineLoss).map { $0 - $1 })
            var outcome = JSONObject(uniqueKeysAndValues: interval(d))
            outcome["records"] = .number(JSONNumber(montessoriLoss.count))
            outcome["montessori_wins"] = .number(JSONNumber(zip(montessoriLoss, baselineLoss).filter { $0 < $1 }.count))
            outcome["montessori_loss"] = num(Evaluation.bootstrap(montessoriLoss).mean)
            outcome["baseline_loss"] = num(Evaluation.bootstrap(baselineLoss).mean)
            outcome["training_records"] = .number(JSONNumber(trainingRecords))
            if let w = tokenWeighted(montessoriLoss, baselineLoss) { outcome["token_weighted"] = w }
            o["outcome"] = .object(outcome)
        }
        let fresh = experiment.fresh
        func freshComparison(_ label: String) -> JSONValue? {
            guard let a = fresh[label], let b = fresh["original"] else { return nil }
            var m = JSONObject(uniqueKeysAndValues: interval(Evaluation.differenceOfMeans(a, b)))
            let helpful = { (x: [Double]) in x.map { $0 > 0 ? 1.0 : 0.0 } }
            let share = Evaluation.differenceOfMeans(helpful(a), helpful(b))
            m["helpful_share_diff"] = num(share.mean)
            m["helpful_share_ci"] = .array([num(share.low), num(share.high)])
            m["candidates"] = .array([.number(JSONNumber(a.count)), .number(JSONNumber(b.count))])
            m["mean_influence"] = .array([num(a.reduce(0, +) / Double(max(a.count, 1))), num(b.reduce(0, +) / Double(max(b.count, 1)))])
            m["helpful_share"] = .array([
                num(helpful(a).reduce(0, +) / Double(max(a.count, 1))), num(helpful(b).reduce(0, +) / Double(max(b.count, 1))),
            ])
            if let adjusted = lengthAdjustedFresh(label, "original") {
                m["response_chars"] = .array([num(adjusted.chars.0), num(adjusted.chars.1)])
                m["length_adjusted_diff"] = num(adjusted.diff.mean)
                m["length_adjusted_ci"] = .array([num(adjusted.diff.low), num(adjusted.diff.high)])
            }
            return .object(m)
        }
        if let m = freshComparison("montessori") { o["mechanism"] = m }
        if let split = mechanismSplitJSON() { o["mechanism_split"] = split }
        if !experiment.chosenGain.isEmpty { o["mechanism_chosen"] = Self.gainsJSON(experiment.chosenGain) }
        if !experiment.trainingChoice.isEmpty { o["training_choice"] = Self.gainsJSON(experiment.trainingChoice) }
        if let c = freshComparison("control") { o["control"] = c }
        if let c = experiment.controlLoss, c.count == baselineLoss.count {
            var controlOutcome = JSONObject(uniqueKeysAndValues: interval(Evaluation.bootstrap(zip(c, baselineLoss).map { $0 - $1 })))
            if let w = tokenWeighted(c, baselineLoss) { controlOutcome["token_weighted"] = w }
            o["control_outcome"] = .object(controlOutcome)
            // What the influence labels add over DPO with random labels on the same pairs.
            if montessoriLoss.count == c.count {
                var m = JSONObject(uniqueKeysAndValues: interval(Evaluation.bootstrap(zip(montessoriLoss, c).map { $0 - $1 })))
                m["montessori_wins"] = .number(JSONNumber(zip(montessoriLoss, c).filter { $0 < $1 }.count))
                if let w = tokenWeighted(montessoriLoss, c) { m["token_weighted"] = w }
                o["montessori_vs_control"] = .object(m)
            }
        }
        if let start = studentsVersusStartJSON() { o["students_vs_start"] = start }
        if let s = experiment.selection { o["selection"] = .object(s.json(tokens: heldoutTokens)) }
        var teacher = JSONObject()
        if let h = dpo.last(where: { (try? $0.string("stage")) == "dpo-heldout" }) {
            teacher["heldout_pair_accuracy"] = h["accuracy"] ?? .null
            for key in [
                "accuracy_ci", "pairs", "reward_margin", "chosen_logp_shift", "rejected_logp_shift",
                "chosen_logp_shift_per_token", "rejected_logp_shift_per_token",
            ] { teacher["heldout_" + key] = h[key] ?? .null }
        }
        let steps = dpo.filter { (try? $0.string("stage")) == "dpo" }
        if let first = steps.first, let last = steps.last {
            teacher["steps"] = .number(JSONNumber(steps.count))
            teacher["first_loss"] = first["loss"] ?? .null
            teacher["last_loss"] = last["loss"] ?? .null
        }
        teacher["pairs"] = .number(JSONNumber(pairs))
        teacher["prompts_with_pairs"] = .number(JSONNumber(promptsWithPairs))
        if let h = experiment.controlDPO.last(where: { (try? $0.string("stage")) == "dpo-heldout" }) {
            teacher["control_heldout_pair_accuracy"] = h["accuracy"] ?? .null
        }
        o["teacher"] = .object(teacher)
        o["probe"] = .object(probeJSON())
        return o
    }

    /// `probe` of result.json: the probing set's influences, first-order against exact, and how
    /// far the reference parts agree.
    func probeJSON() -> JSONObject {
        let num = JSONNumber.value
        var probe = JSONObject()
        probe["candidates"] = .number(JSONNumber(influences.count))
        probe["helpful"] = .number(JSONNumber(influences.filter { $0 > 0 }.count))
        if let e = experiment.exactAgreement {
            probe["exact_records"] = .number(JSONNumber(e.records))
            probe["exact_spearman"] = e.spearman.map(num) ?? .null
            probe["exact_same_sign"] = .number(JSONNumber(e.sameSign))
        }
        if let a = experiment.referenceParts {
            probe["parts_correlation"] = a.correlation.map(num) ?? .null
            let order = a.withinPromptOrder
            probe["parts_within_prompt_order_agree"] = .number(JSONNumber(order.agree))
            probe["parts_within_prompt_order_pairs"] = .number(JSONNumber(order.pairs))
            if let adjusted = a.lengthAdjusted {
                // What length-adjusted pairs are decided by: each part's residual on ln(length).
                probe["parts_length_adjusted_correlation"] = adjusted.correlation.map(num) ?? .null
                let o = adjusted.withinPromptOrder
                probe["parts_length_adjusted_within_prompt_order_agree"] = .number(JSONNumber(o.agree))
                probe["parts_length_adjusted_within_prompt_order_pairs"] = .number(JSONNumber(o.pairs))
            }
        }
        return probe
    }
}

/// First-order against exact influence on a sample of the probing set.
public struct ExactAgreement: Sendable {
    public var records: Int
    public var spearman: Double?
    public var sameSign: Int
}

/// What the experiment options measured in a round.
public struct ExperimentReport: Sendable {
    /// Influences of fresh candidates per teacher ("original", "montessori", "control").
    public var fresh: [String: [Double]] = [:]
    /// The same candidates' response lengths (characters, as mi-pair counts them), in the same order.
    public var freshLength: [String: [Int]] = [:]
    public var controlDPO: [JSONObject] = []
    public var controlLoss: [Double]?
    /// Held-out loss per record of the model the round's students started from (`eval-start`).
    public var startLoss: [Double]?
    public var exactAgreement: ExactAgreement?
    /// With `probe: {reference_parts: K}`: how far influences on the reference parts agree.
    public var referenceParts: ReferencePartAgreement?
    /// experiment.selection: the students trained on the pairs' chosen and rejected candidates.
    public var selection: SelectionCheck?
    /// `montessori_set: chosen`: per choosing teacher ("montessori", "control"), what its choice
    /// among the original teacher's fresh candidates of a prompt gains in influence over the
    /// prompt's mean, against the first and the most influential candidate, also with length
    /// taken out (`ImplicitRewardChoice.Gain`).
    public var chosenGain: [String: ImplicitRewardChoice.Gain] = [:]
    /// `montessori_set: influence`: the same on the training prompts' candidates (all probed), per
    /// updated teacher: how much of the oracle's gain its implicit reward reaches where it chooses.
    public var trainingChoice: [String: ImplicitRewardChoice.Gain] = [:]
}

/// What the run did and found, as the table `make demo` ends with.
public struct RunReport: Sendable {
    public init() {}
    public var split: (probe: Int, heldout: Int)?
    public var warmup = DataReport()
    public var rounds: [RoundReport] = []
    public var steps = (ran: 0, resumed: 0, skipped: 0)

    /// summary.md: the run as one table of stages and results, then how to read it.
    public var markdown: String {
        var rows: [(String, String)] = []
        if let split { rows.append(("reference records: probing / held out", "\(split.probe) / \(split.heldout)")) }
        if warmup.generated > 0 || warmup.answered > 0 {
            rows.append(("warm-up data: generated → deduplicated → answered", warmup.cell))
        }
        for r in rounds {
            let p = "round \(r.round): "
            rows += dataRows(r, p) + outcomeRows(r, p) + experimentRows(r, p) + controlRows(r, p)
        }
        return "| stage | result |\n|---|---|\n" + rows.map { "| \($0.0) | \($0.1) |" }.joined(separator: "\n") + "\n" + legend
    }

    /// summary.md's rows for a round's data: the probing set, its influence and pairs, DPO, the training sets.
    func dataRows(_ r: RoundReport, _ p: String) -> [(String, String)] {
        var rows: [(String, String)] = []
        rows.append((p + "probing set: generated → deduplicated → answered", r.probing.cell))
        let inf = r.influences.sorted()
        if !inf.isEmpty {
            rows.append((p + "influence: min / median / max", "\(f(inf.first!, 5)) / \(f(median(inf), 5)) / \(f(inf.last!, 5))"))
            rows.append(
                (
                    p + "helpful (> 0) / harmful (< 0) candidates",
                    "\(inf.filter { $0 > 0 }.count) / \(inf.filter { $0 < 0 }.count)"
                ))
        }
        rows.append((p + "preference pairs (prompts with pairs)", "\(r.pairs) (\(r.promptsWithPairs))"))
        if let s = r.experiment.selection {
            let d = s.diff, wins = s.winsOverRejected
            rows.append(
                (
                    p
                        + "selection check: student on the pairs' chosen − on their rejected candidates (\(s.records) records each; paired 95 % CI); lower on",
                    "\(ci(d, 4)); \(wins) of \(s.chosenLoss.count) records"
                ))
            let rd = s.randomDiff
            rows.append(
                (
                    p + "selection check: student on the chosen − on a random candidate of each prompt (paired 95 % CI)",
                    ci(rd, 4)
                ))
        }
        let dpoSteps = r.dpo.filter { (try? $0.string("stage")) != "dpo-heldout" }
        if let last = dpoSteps.last {
            let acc = dpoSteps.compactMap { try? $0.double("accuracy") }
            rows.append(
                (
                    p + "DPO: steps, first → last loss, mean accuracy",
                    "\(dpoSteps.count), \(f((try? dpoSteps[0].double("loss")) ?? .nan, 4)) → \(f((try? last.double("loss")) ?? .nan, 4)), "
                        + f(acc.reduce(0, +) / Double(max(acc.count, 1)), 2)
                ))
        } else {
            rows.append((p + "DPO", "not run (no pairs): teacher unchanged"))
        }
        switch r.montessoriSet {
        case .written: rows.append((p + "training data, Montessori teacher", r.montessoriData.cell))
        case .chosen:
            rows.append(
                (p + "training data chosen by the Montessori teacher: original's candidates → kept → chosen, answered", r.montessoriData.cell))
        case .influence:
            rows.append(
                (
                    p
                        + "training data chosen by influence on the student (oracle): original's candidates → kept → chosen (all answered and probed)",
                    r.montessoriData.cell
                ))
        }
        rows.append((p + "training data, original teacher", r.baselineData.cell))
        rows.append(
            (
                p + "training records per student (both sets cut to the smaller)",
                "\(r.trainingRecords) (of \(r.montessoriData.answered) Montessori, \(r.baselineData.answered) original)"
            ))
        return rows
    }

    /// The students' held-out losses, against each other and against their start.
    func outcomeRows(_ r: RoundReport, _ p: String) -> [(String, String)] {
        var rows: [(String, String)] = []
        if !r.montessoriLoss.isEmpty {
            let b = Evaluation.bootstrap(r.baselineLoss), m = Evaluation.bootstrap(r.montessoriLoss)
            let d = Evaluation.bootstrap(zip(r.montessoriLoss, r.baselineLoss).map { $0 - $1 })
            rows.append((p + "held-out loss: baseline student (95 % CI)", ci(b, 4)))
            rows.append((p + "held-out loss: Montessori student (95 % CI)", ci(m, 4)))
            let wins = zip(r.montessoriLoss, r.baselineLoss).filter { $0 < $1 }.count
            rows.append(
                (
                    p + "Montessori − baseline (paired 95 % CI); lower on",
                    "\(ci(d, 4)); "
                        + "\(wins) of \(r.montessoriLoss.count) records"
                ))
            if let w = r.tokenWeightedInterval(r.montessoriLoss, r.baselineLoss) {
                rows.append(
                    (
                        p + "Montessori − baseline per token (records weighted by their tokens; 95 % CI)",
                        ci(w, 4)
                    ))
            }
        }
        if let v = r.studentsVersusStart() {
            rows.append((p + "held-out loss: the model the students started from", f(v.startLoss, 4)))
            for st in v.students {
                rows.append(
                    (
                        p + "\(st.label) student − its start (paired 95 % CI); lower on",
                        "\(ci(st.diff, 4)); \(st.betterOn) of \(st.loss.count) records"
                    ))
            }
        }
        return rows
    }

    /// The experiment's measurements: the exact probe, the teacher's held-out pairs, the fresh candidates, the choices, the crossing.
    func experimentRows(_ r: RoundReport, _ p: String) -> [(String, String)] {
        var rows: [(String, String)] = []
        if let e = r.experiment.exactAgreement {
            rows.append(
                (
                    p + "first-order vs exact influence: records, Spearman, same sign",
                    "\(e.records), \(e.spearman.map { f($0, 3) } ?? "–"), \(e.sameSign)"
                ))
        }
        if let h = r.dpo.last(where: { (try? $0.string("stage")) == "dpo-heldout" }) {
            rows.append(
                (
                    p + "DPO held-out pairs: pairs, accuracy, reward margin; log-probability shift of chosen / rejected (nats)",
                    "\((try? h.int("pairs")) ?? 0), \(f((try? h.double("accuracy")) ?? .nan, 3)), \(f((try? h.double("reward_margin")) ?? .nan, 4)); "
                        + "\(f((try? h.double("chosen_logp_shift")) ?? .nan, 3)) / \(f((try? h.double("rejected_logp_shift")) ?? .nan, 3))"
                ))
        }
        let fresh = r.experiment.fresh
        for label in ["original", "montessori", "control"] {
            guard let v = fresh[label], !v.isEmpty else { continue }
            let mean = v.reduce(0, +) / Double(v.count)
            rows.append(
                (p + "fresh candidates, \(label) teacher: n, mean influence, helpful", "\(v.count), \(f(mean, 6)), \(v.filter { $0 > 0 }.count)"))
        }
        for label in ["montessori", "control"] {
            guard let a = fresh[label], let b = fresh["original"] else { continue }
            let d = Evaluation.differenceOfMeans(a, b)
            rows.append((p + "mean fresh influence, \(label) − original (95 % CI)", ci(d)))
            if let adjusted = r.lengthAdjustedFresh(label, "original") {
                let d = adjusted.diff
                rows.append(
                    (
                        p + "the same with length taken out (95 % CI); answer characters \(label), original",
                        "\(ci(d)); \(f(adjusted.chars.0, 0)), \(f(adjusted.chars.1, 0))"
                    ))
            }
        }
        for (label, name) in RoundReport.crossings {
            guard let v = fresh[label], !v.isEmpty else { continue }
            let mean = v.reduce(0, +) / Double(v.count)
            rows.append((p + "fresh candidates, \(name): n, mean influence, helpful", "\(v.count), \(f(mean, 6)), \(v.filter { $0 > 0 }.count)"))
        }
        rows += gainRows(r.experiment.chosenGain, candidates: "fresh", prefix: p)
        rows += gainRows(r.experiment.trainingChoice, candidates: "training", prefix: p)
        if let split = r.mechanismSplit {
            for (name, d) in [
                ("instructions", split.instructions), ("answers", split.answers), ("instructions × answers interaction", split.interaction),
            ] {
                rows.append((p + "mechanism from the Montessori teacher's \(name) (95 % CI)", ci(d)))
            }
        }
        return rows
    }

    /// The control student against the baseline and the Montessori student.
    func controlRows(_ r: RoundReport, _ p: String) -> [(String, String)] {
        var rows: [(String, String)] = []
        if let c = r.experiment.controlLoss, c.count == r.baselineLoss.count {
            let d = Evaluation.bootstrap(zip(c, r.baselineLoss).map { $0 - $1 })
            rows.append((p + "control student − baseline (paired 95 % CI)", ci(d, 4)))
            if r.montessoriLoss.count == c.count {
                let m = Evaluation.bootstrap(zip(r.montessoriLoss, c).map { $0 - $1 })
                let wins = zip(r.montessoriLoss, c).filter { $0 < $1 }.count
                rows.append(
                    (
                        p + "Montessori − control student (paired 95 % CI); lower on",
                        "\(ci(m, 4)); \(wins) of \(c.count) records"
                    ))
            }
        }
        return rows
    }
    /// What tells the students' training sets apart (the last round's `montessori_set`).
    var setsDiffer: String {
        switch rounds.last?.montessoriSet ?? .written {
        case .written: return "which teacher wrote them"
        case .chosen:
            let control = rounds.last?.experiment.controlLoss != nil ? ", the control teacher's" : ""
            return "which of the original teacher's candidates each prompt keeps (the Montessori teacher's choice\(control) or the first)"
        case .influence: return "which of the original teacher's candidates each prompt keeps (the most influential or the first)"
        }
    }

    /// How to read the table, and what its sizes can show.
    var legend: String {
        var lines = [
            "",
            "How to read it:",
            "- Influence: the student's loss on the probe's reference set before minus after one optimizer step on the candidate "
                + "(nats per token). Above 0 the step lowered that loss: helpful; below 0: harmful.",
            "- Held-out loss: mean negative log-likelihood per response token on the held-out set; lower is better. "
                + "Montessori − baseline below 0 favours the Montessori student; the paired 95 % interval shows an effect only when it excludes 0.",
            "- The students train on the same number of records, so they differ only in " + setsDiffer + ".",
        ]
        let smallest = rounds.map(\.trainingRecords).min() ?? 0
        if smallest < 500 || rounds.contains(where: { $0.pairs < 100 }) {
            lines.append(
                "- At these sizes (\(smallest) training records per student, \(rounds.map(\.pairs).min() ?? 0) preference pairs) "
                    + "the run shows that the loop works end to end, not whether the method helps: "
                    + "that needs hundreds of pairs and about a thousand records per student (configs/experiment.yaml, EXPERIMENTS.md).")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }

    /// summary.md's rows for each choosing teacher's gain on the original teacher's `candidates`
    /// ("fresh" or "training") candidates.
    func gainRows(_ all: [String: ImplicitRewardChoice.Gain], candidates: String, prefix p: String) -> [(String, String)] {
        var rows: [(String, String)] = []
        for (label, g) in all.sorted(by: { $0.key < $1.key }) {
            let name = p + "\(label) teacher's choice of the original's \(candidates) candidates"
            rows.append(
                (
                    name + ": influence − prompt mean (95 % CI); the first's; chosen − first (paired); the most influential's; "
                        + "prompts; of them, where it is the most influential",
                    "\(ci(g.chosen)); \(ci(g.first)); \(ci(g.chosenVsFirst)); \(f(g.best, 6)); \(g.prompts); \(g.sameAsBest)"
                ))
            if let r = g.spearman {
                let adjusted = g.lengthAdjusted?.spearman.map { "; length taken out " + ci($0, 3) } ?? ""
                rows.append((name + ": Spearman(log-probability difference, influence) over all candidates (95 % CI)", ci(r, 3) + adjusted))
            }
            if let a = g.lengthAdjusted {
                let n = a.characters
                rows.append(
                    (
                        name + ", length taken out: chosen; first; chosen − first; the most influential; answer characters of the three",
                        "\(ci(a.chosen)); \(ci(a.first)); \(ci(a.chosenVsFirst)); \(ci(a.best)); "
                            + "\(f(n.chosen, 0)), \(f(n.first, 0)), \(f(n.best, 0))"
                    ))
            }
        }
        if let d = ImplicitRewardChoice.Gain.paired(all["montessori"], all["control"]) {
            rows.append((p + "montessori teacher's choice − control teacher's of the original's \(candidates) candidates (paired 95 % CI)", ci(d)))
        }
        return rows
    }

    /// An interval as summary.md writes it: "mean (low–high)", six decimals.
    func ci(_ i: Evaluation.Interval, _ digits: Int = 6) -> String { "\(f(i.mean, digits)) (\(f(i.low, digits))–\(f(i.high, digits)))" }

    func f(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "–" }
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([Int32(digits), x]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}
