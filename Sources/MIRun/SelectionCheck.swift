import MICore
import MIStages
import MIStream

/// experiment.selection: does the probe's label pick data that trains a better student? The
/// teacher never enters it: the pairs' chosen candidates and their rejected ones, as two training
/// sets of the same size, each train a student from the round's start with the training settings,
/// and both are scored on the held-out set. If the student trained on the chosen candidates is not
/// better, no teacher that learns the pairs perfectly can make a better student from them. A third
/// student, trained on one candidate drawn at random for each of the pairs' prompts (what the
/// original teacher gives on average), measures how much a perfect learner could gain over it.
public struct SelectionCheck: Sendable {
    /// Training records per student.
    public let records: Int
    /// Held-out loss per record of the students trained on the chosen, on the rejected and on a
    /// random candidate of each prompt.
    public let chosenLoss: [Double]
    public let rejectedLoss: [Double]
    public let randomLoss: [Double]
    /// Mean answer characters of the training sets: chosen, rejected, random.
    public let responseChars: [Double]
    /// Chosen − rejected and chosen − random, paired by record, with their bootstrap intervals.
    public let diff: Evaluation.Interval
    public let randomDiff: Evaluation.Interval

    public init(records: Int, chosenLoss: [Double], rejectedLoss: [Double], randomLoss: [Double], responseChars: [Double]) throws {
        guard chosenLoss.count == rejectedLoss.count, chosenLoss.count == randomLoss.count else {
            throw RunError(
                "selection check: held-out losses for \(chosenLoss.count), \(rejectedLoss.count) and \(randomLoss.count) records; the three students must be scored on the same records",
                exitStatus: ExitStatus.dataError.rawValue)
        }
        self.records = records
        self.chosenLoss = chosenLoss
        self.rejectedLoss = rejectedLoss
        self.randomLoss = randomLoss
        self.responseChars = responseChars
        diff = Evaluation.bootstrap(zip(chosenLoss, rejectedLoss).map { $0 - $1 })
        randomDiff = Evaluation.bootstrap(zip(chosenLoss, randomLoss).map { $0 - $1 })
    }

    /// Records on which the chosen student's loss is below the rejected and the random one's.
    public var winsOverRejected: Int { zip(chosenLoss, rejectedLoss).filter { $0 < $1 }.count }
    public var winsOverRandom: Int { zip(chosenLoss, randomLoss).filter { $0 < $1 }.count }

    /// result.json's `selection`: chosen − rejected held-out loss (paired; below 0 the labels pick
    /// helpful data), the records the chosen student wins, the sets' size and answer lengths, and
    /// `chosen_vs_random`: what a teacher that always wrote the chosen candidate would gain over
    /// the original's average one. `tokens`: each held-out record's response tokens.
    func json(tokens: [Double]) -> JSONObject {
        let num = JSONNumber.value
        let mean = { (x: [Double]) in num(x.reduce(0, +) / Double(max(x.count, 1))) }
        let weighted = { (a: [Double], b: [Double]) in RoundReport.tokenWeightedJSON(a, b, tokens: tokens) }
        var o = JSONObject(uniqueKeysAndValues: RoundReport.intervalEntries(diff))
        o["chosen_wins"] = .number(JSONNumber(winsOverRejected))
        o["records"] = .number(JSONNumber(chosenLoss.count))
        o["training_records"] = .number(JSONNumber(records))
        o["chosen_loss"] = mean(chosenLoss)
        o["rejected_loss"] = mean(rejectedLoss)
        o["response_chars"] = .array(responseChars.map(num))
        if let w = weighted(chosenLoss, rejectedLoss) { o["token_weighted"] = w }
        var r = JSONObject(uniqueKeysAndValues: RoundReport.intervalEntries(randomDiff))
        r["chosen_wins"] = .number(JSONNumber(winsOverRandom))
        r["random_loss"] = mean(randomLoss)
        if let w = weighted(chosenLoss, randomLoss) { r["token_weighted"] = w }
        o["chosen_vs_random"] = .object(r)
        return o
    }
}

extension MontessoriRun {
    /// The selection check of one round (see `SelectionCheck`), from the scored probing set and
    /// the pairs made of it; the students start from `start`, as the round's students do.
    func selectionCheck(_ scored: Artifact, pairs: Artifact, round r: Int, heldout: Artifact, start: Artifact) throws -> SelectionCheck? {
        let rd = "round-\(r)/", labels = ["chosen", "rejected", "random"]
        let sets = labels.map { rd + "selection-\($0).jsonl.gz" }
        let seed = config.seed + 200 + r
        let made = try step(
            rd + "selection-sets", inputs: [("scored", scored), ("pairs", pairs)],
            settings: "the pairs' chosen and rejected candidates, each once, and a random one per prompt (seed \(seed)), cut to the same size",
            outputs: sets
        ) { _ in
            try Self.selectionSets(
                scored: scored.path, pairs: pairs.path, chosen: self.path(sets[0]), rejected: self.path(sets[1]), random: self.path(sets[2]),
                seed: UInt64(seed))
        }
        let records = made.result.intValue("records")
        guard records > 0 else {
            Log.info("round \(r): no candidate is only chosen or only rejected; no selection check")
            return nil
        }
        // The round's training settings and shuffling seed: the students differ only in their data.
        let students = try labels.map { label in
            try train(
                from: start, data: try file(rd + "selection-\(label).jsonl.gz"), options: config.training.learn,
                name: rd + "sft-selection-\(label)", out: rd + "student-selection-\(label)", seed: seed)
        }
        let out = rd + "eval-selection.jsonl"
        try evaluate(students[0], against: students[1], heldout: heldout, name: rd + "eval-selection", out: out)
        let randomOut = rd + "eval-selection-random.jsonl"
        try evaluate(students[2], heldout: heldout, name: rd + "eval-selection-random", out: randomOut)
        return try SelectionCheck(
            records: records, chosenLoss: try Self.doubles(path(out), field: "loss"),
            rejectedLoss: try Self.doubles(path(out), field: "loss_against"), randomLoss: try Self.doubles(path(randomOut), field: "loss"),
            responseChars: labels.map { made.result.doubleValue($0 + "_chars") })
    }

    /// The scored records the pairs chose (`chosen_id`) into `chosen` and those they rejected into
    /// `rejected`, each once, in the scored file's order; into `random`, one scored candidate of
    /// each paired prompt drawn at random (`seed`; prompts in the order they first appear in the
    /// scored file); all three cut to the smallest count. A candidate chosen in one pair and
    /// rejected in another belongs to neither of the first two.
    public static func selectionSets(
        scored: String, pairs: String, chosen: String, rejected: String, random: String, seed: UInt64
    ) throws -> JSONObject {
        var chosenIDs = Set<String>(), rejectedIDs = Set<String>(), prompts = Set<String>()
        let p = RecordReader(paths: [pairs])
        while let rec = try p.next() {
            if let prompt = try? rec.object.string("prompt_id") { prompts.insert(prompt) }
            guard let c = try? rec.object.string("chosen_id"), let j = try? rec.object.string("rejected_id") else {
                throw RunError("\(rec.location): a pair without chosen_id and rejected_id", exitStatus: ExitStatus.dataError.rawValue)
            }
            chosenIDs.insert(c)
            rejectedIDs.insert(j)
        }
        let both = chosenIDs.intersection(rejectedIDs)
        chosenIDs.subtract(both)
        rejectedIDs.subtract(both)
        var sets: ([JSONObject], [JSONObject]) = ([], [])
        var byPrompt: [(String, [JSONObject])] = [], promptIndex: [String: Int] = [:]
        let s = RecordReader(paths: [scored])
        var found = Set<String>()
        while let rec = try s.next() {
            if let prompt = try? rec.object.string("prompt_id"), prompts.contains(prompt) {
                if promptIndex[prompt] == nil {
                    promptIndex[prompt] = byPrompt.count
                    byPrompt.append((prompt, []))
                }
                byPrompt[promptIndex[prompt]!].1.append(rec.object)
            }
            guard let id = try? rec.object.string("id") else { continue }
            if chosenIDs.contains(id) { sets.0.append(rec.object) } else if rejectedIDs.contains(id) { sets.1.append(rec.object) } else { continue }
            guard found.insert(id).inserted else {
                throw RunError("\(rec.location): id \(id) appears twice in the scored file", exitStatus: ExitStatus.dataError.rawValue)
            }
        }
        let missing = chosenIDs.union(rejectedIDs).subtracting(found)
        if let id = missing.sorted().first {
            throw RunError(
                "\(pairs): \(missing.count) paired candidate(s) not in \(scored), e.g. id \(id)", exitStatus: ExitStatus.dataError.rawValue)
        }
        var rng = SplitMix64(seed: seed)
        let drawn = byPrompt.map { $0.1[Int(rng.next() % UInt64($0.1.count))] }
        let n = min(sets.0.count, sets.1.count, drawn.count)
        var result: JSONObject = ["records": .number(JSONNumber(n)), "in_both": .number(JSONNumber(both.count))]
        for (label, records, out) in [("chosen", sets.0, chosen), ("rejected", sets.1, rejected), ("random", drawn, random)] {
            let w = try JSONLWriter(path: out)
            for record in records.prefix(n) { try w.write(record) }
            try w.commit()
            let chars = records.prefix(n).map { Double(Pairing.responseCharacters($0) ?? 0) }
            result[label + "_chars"] = JSONNumber.value(chars.reduce(0, +) / Double(max(n, 1)))
        }
        return result
    }
}
