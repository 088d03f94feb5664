import MICore
import MIStages
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// The Montessori-Instruct loop as steps over one run directory. Each step runs a stage tool (or a
/// small in-process step: the reference split, equal-sized training sets) and is fingerprinted by
/// its settings and the content of its inputs; a finished step with the same fingerprint is
/// skipped, an interrupted one resumed, a changed one redone (and, through the fingerprints, every
/// step downstream of it).
///
///   warm-up:  teacher data → SFT of the student (keeping its AdamW state for the probe)
///   round r:  probing set from teacher_{r-1} → local data influence on student_{r-1} → pairs →
///             DPO of teacher_{r-1} = teacher_r → training sets from teacher_r and from the
///             original teacher, cut to the same size → SFT of both students → held-out losses
public final class MontessoriRun {
    public struct Artifact: Sendable {
        public let path: String
        public let fingerprint: String
    }

    let config: RunConfig
    public let directory: String
    let toolDirectory: String
    let quiet: Bool
    let hashes: ContentHashes
    let ledger: StepLedger
    public private(set) var ran: [String] = []
    public private(set) var skipped: [String] = []
    public private(set) var resumed: [String] = []
    var lastCommand: [String] = []
    /// The step whose body is running (Slurm jobs are named and kept by it).
    var currentStep = ""
    var totalSteps = 0

    public init(config: RunConfig, directory: String, toolDirectory: String? = nil, quiet: Bool = false) throws {
        self.config = config
        self.directory = directory
        self.toolDirectory = toolDirectory ?? Files.executableDirectory()
        self.quiet = quiet
        try Files.makeDirectories(directory + "/.mi-run")
        // One run at a time per directory. The descriptor is inherited by the tools (no
        // O_CLOEXEC), so a tool left running by a killed mi-run still holds the lock.
        let lock = open(directory + "/.mi-run/lock", O_RDWR | O_CREAT, 0o644)
        guard lock >= 0, flock(lock, LOCK_EX | LOCK_NB) == 0 else {
            throw RunError("\(directory) is in use by another mi-run (or a tool it started)", exitStatus: ExitStatus.interrupted.rawValue)
        }
        hashes = ContentHashes(cachePath: directory + "/.mi-run/content-hashes.jsonl")
        ledger = try StepLedger(runDirectory: directory)
    }

    func path(_ relative: String) -> String { directory + "/" + relative }

    /// Writes a text file in the run directory atomically (through `OutputFile`: a partial, then rename).
    public func writeText(_ text: String, to relative: String) throws { try Self.writeFile(text, to: path(relative)) }

    /// The report's plots (`RunReport.plots`) as SVG files in `directory`.
    public static func writePlots(_ report: RunReport, into directory: String) throws {
        try Files.makeDirectories(directory)
        for (name, svg) in report.plots { try writeFile(svg, to: directory + "/" + name) }
    }

    /// Writes a text file through `OutputFile` (a regular file: a partial, then rename).
    public static func writeFile(_ text: String, to path: String) throws { try OutputFile.write(Array(text.utf8), to: path) }

    // MARK: - The loop

    /// The files every round reads: the original teacher, the seed tasks, the probe's reference
    /// set, the held-out set and the base student.
    struct Inputs {
        let teacher: Artifact
        let seeds: Artifact
        let probeReference: Artifact
        let heldout: Artifact
        let base: Artifact
    }

    /// The models one round hands to the next.
    struct Models {
        var teacher: Artifact
        /// The student whose influence is measured.
        var probed: Artifact
        var montessori: Artifact
        var baseline: Artifact
        var control: Artifact
    }

    /// Runs (or continues) the whole loop and returns its report: the phases of the diagram above.
    public func run() throws -> RunReport {
        defer { hashes.save() }
        var report = RunReport()
        let inputs = try prepareInputs(&report)
        var models = try warmUp(inputs, report: &report)
        for r in 1...config.rounds {
            report.rounds.append(try round(r, inputs: inputs, models: &models))
        }
        report.steps = (ran.count, resumed.count, skipped.count)
        return report
    }

    /// The external files, the student cut to `student_layers`, and the reference split when no
    /// held-out set is given.
    func prepareInputs(_ report: inout RunReport) throws -> Inputs {
        let teacher0 = try external(config.teacher)
        let seeds = try external(config.seeds)
        let reference = try external(config.reference)
        let base = try baseStudent()
        guard config.heldout == nil else {
            return Inputs(
                teacher: teacher0, seeds: seeds, probeReference: reference, heldout: try external(config.heldout!), base: base)
        }
        let fraction = config.heldoutFraction, spread = config.heldoutSpread
        let split = try step(
            "split", inputs: [("reference", reference)], settings: "heldout_fraction \(fraction)" + (spread ? " spread" : ""),
            outputs: ["reference-probe.jsonl", "heldout.jsonl"]
        ) { _ in
            try Self.split(
                reference.path, fraction: fraction, spread: spread, probe: self.path("reference-probe.jsonl"),
                heldout: self.path("heldout.jsonl"))
        }
        report.split = (split.result.intValue("probe"), split.result.intValue("heldout"))
        return Inputs(
            teacher: teacher0, seeds: seeds, probeReference: try file("reference-probe.jsonl"), heldout: try file("heldout.jsonl"),
            base: base)
    }

    /// `student`, or with `student_layers` that model cut to those blocks (F32, so nothing is
    /// rounded twice), written into the run directory by `mi-model export`.
    func baseStudent() throws -> Artifact {
        let student = try external(config.student)
        guard let layers = config.studentLayers else { return student }
        _ = try step("student", inputs: [("model", student)], settings: "layers \(layers)", outputs: ["student.gguf"]) { _ in
            try self.tool("mi-model", Self.cutArguments(student.path, layers: layers, out: self.path("student.gguf")))
            return JSONObject()
        }
        return try file("student.gguf")
    }

    /// mi-model's arguments that write `model` cut to the blocks `layers`, as F32, to `out`.
    static func cutArguments(_ model: String, layers: String, out: String) -> [String] {
        ["export", "--model", model, "--out", out, "--layers", layers, "--format", "F32"]
    }

    /// Warm-up: the student trained on the original teacher's data (its AdamW state is what the
    /// probe steps from); the final students start from it or from the base (`students_start`).
    func warmUp(_ inputs: Inputs, report: inout RunReport) throws -> Models {
        var student = inputs.base
        if let warmup = config.warmup {
            let data = try synthesize(
                warmup, prefix: "warmup/", teacher: inputs.teacher, answeredBy: inputs.teacher, seeds: inputs.seeds, seed: config.seed + 100,
                report: &report.warmup)
            student = try train(from: student, data: data, options: warmup.learn, name: "warmup/sft", out: "warmup/student", seed: config.seed + 100)
            report.warmup.trainingRecords = try count(data.path)
        }
        let start = config.studentsStart == .base ? inputs.base : student
        return Models(teacher: inputs.teacher, probed: student, montessori: start, baseline: start, control: start)
    }

    /// One round: probe → pairs → DPO of the teacher (and the control) → the mechanism's fresh
    /// candidates → the students' training sets and SFT → held-out losses.
    func round(_ r: Int, inputs: Inputs, models m: inout Models) throws -> RoundReport {
        var round = RoundReport(round: r)
        let rd = "round-\(r)/"
        let scored = try probePhase(r, inputs: inputs, models: m, report: &round)
        let pairs = try pairPhase(scored, round: rd, report: &round)
        if config.experiment.selection, round.pairs > 0 {
            round.experiment.selection = try selectionCheck(scored, pairs: pairs, round: r, heldout: inputs.heldout, start: m.baseline)
        }
        let (updated, controlTeacher) = try updateTeacher(m.teacher, pairs: pairs, round: r, report: &round)
        if config.experiment.mechanismPrompts > 0 {
            var teachers = [("original", m.teacher)]
            if round.pairs > 0 { teachers.append(("montessori", updated)) }
            if let controlTeacher { teachers.append(("control", controlTeacher)) }
            try mechanism(teachers, round: r, inputs: inputs, student: m.probed, report: &round)
        }
        try trainStudents(r, inputs: inputs, teacher: updated, controlTeacher: controlTeacher, models: &m, report: &round)
        if config.experiment.enabled {
            let result = round.resultJSON(seed: config.seed)
            try writeText(JSONWriter.string(.object(result)) + "\n", to: rd + "result.json")
            if r == config.rounds { try writeText(JSONWriter.string(.object(result)) + "\n", to: "result.json") }
        }
        m.teacher = updated
        m.probed = m.montessori
        return round
    }

    /// The probing set from the current teacher, scored by its local data influence on the
    /// probed student (and a random part of it exactly, when the probe is first-order).
    func probePhase(_ r: Int, inputs: Inputs, models m: Models, report round: inout RoundReport) throws -> Artifact {
        let rd = "round-\(r)/"
        let probeSet = try synthesize(
            config.probing, prefix: rd + "probe-", teacher: m.teacher, answeredBy: responder(for: m.teacher, inputs: inputs), seeds: inputs.seeds,
            seed: config.seed + r, report: &round.probing)
        let scored = try probe(
            probeSet, student: m.probed, reference: inputs.probeReference, options: config.probing.learn,
            name: rd + "probe", out: rd + "scored.jsonl.gz", shards: config.probeShards)
        round.influences = try Self.doubles(scored.path, field: "influence")
        round.experiment.referenceParts = try Self.referencePartAgreement(scored.path)
        if config.experiment.exactFraction > 0, config.probing.learn.value("method") == "first-order" {
            round.experiment.exactAgreement = try exactAgreement(
                scored, probeSet: probeSet, student: m.probed,
                reference: inputs.probeReference, round: rd)
        }
        return scored
    }

    /// Helpful against harmful candidates of one prompt.
    func pairPhase(_ scored: Artifact, round rd: String, report round: inout RoundReport) throws -> Artifact {
        let pairsPath = rd + "pairs.jsonl.gz"
        _ = try step(rd + "pair", inputs: [("scored", scored)], settings: command("mi-pair") + config.pair.canonical, outputs: [pairsPath]) { _ in
            try self.tool("mi-pair", [scored.path, "-o", self.path(pairsPath)] + self.config.pair.arguments())
            return ["pairs": .number(JSONNumber(try self.count(self.path(pairsPath))))]
        }
        let pairs = try file(pairsPath)
        round.pairs = try count(pairs.path)
        round.promptsWithPairs = Set(try Self.strings(pairs.path, field: "prompt_id")).count
        return pairs
    }

    /// DPO of the teacher on the pairs, and (experiment.control) on the same pairs with random
    /// labels. Without pairs the teacher stays as it is.
    func updateTeacher(_ teacher: Artifact, pairs: Artifact, round r: Int, report round: inout RoundReport) throws
        -> (updated: Artifact, control: Artifact?)
    {
        let rd = "round-\(r)/"
        guard round.pairs > 0 else {
            Log.info("round \(r): no preference pairs; the teacher stays as it is")
            return (teacher, nil)
        }
        let updated = try dpo(teacher, pairs: pairs, name: rd + "dpo", out: rd + "teacher", metrics: rd + "dpo-metrics.jsonl", seed: config.seed + r)
        round.dpo = try Self.metrics(path(rd + "dpo-metrics.jsonl"))
        guard config.experiment.control else { return (updated, nil) }
        let randomPath = rd + "pairs-random.jsonl.gz"
        let seed = config.seed + 400 + r
        _ = try step(
            rd + "pairs-random", inputs: [("pairs", pairs)], settings: "chosen and rejected swapped at random, seed \(seed)",
            outputs: [randomPath]
        ) { _ in
            try Self.randomLabels(pairs.path, out: self.path(randomPath), seed: UInt64(seed))
        }
        let control = try dpo(
            teacher, pairs: try file(randomPath), name: rd + "dpo-control", out: rd + "teacher-control",
            metrics: rd + "dpo-control-metrics.jsonl", seed: config.seed + r)
        round.experiment.controlDPO = try Self.metrics(path(rd + "dpo-control-metrics.jsonl"))
        return (updated, control)
    }

    /// The mechanism (the paper's Figure 3): fresh candidates from each teacher, the same prompts
    /// (one generation round, so no prompt sees another's output) and sampling seeds, each set
    /// probed on the student measured in this round.
    func mechanism(_ teachers: [(String, Artifact)], round r: Int, inputs: Inputs, student: Artifact, report round: inout RoundReport) throws {
        let rd = "round-\(r)/", experiment = config.experiment
        var phase = config.probing
        var sizes = RunConfig.Options()
        sizes.entries = [
            ("prompts", .init(.scalar(String(experiment.mechanismPrompts)), location: "")),
            ("samples", .init(.scalar(String(experiment.mechanismSamples)), location: "")),
            ("round", .init(.scalar(String(experiment.mechanismPrompts)), location: "")),
        ]
        phase.generate = sizes.over(config.probing.generate)
        phase.records = nil // the same prompts for every teacher, however many instructions they give
        let seed = config.seed + 300 + r
        for (label, t) in teachers {
            var data = DataReport()
            let fresh = try synthesize(
                phase, prefix: rd + "mechanism-\(label)-", teacher: t, answeredBy: responder(for: t, inputs: inputs), seeds: inputs.seeds,
                seed: seed, report: &data)
            let s = try probe(
                fresh, student: student, reference: inputs.probeReference, options: config.probing.learn,
                name: rd + "mechanism-\(label)-probe", out: rd + "mechanism-\(label)-scored.jsonl.gz", shards: config.probeShards)
            try round.experiment.readFresh(label, from: s.path)
        }
        if config.montessoriSet == .chosen { try chosenGain(teachers, round: rd, report: &round) }
        if experiment.mechanismCrossed {
            // Each teacher's instructions answered by the other, with the same answering settings.
            let options = sampled(phase.respond, seed: seed)
            let byLabel = Dictionary(uniqueKeysWithValues: teachers)
            guard let original = byLabel["original"], let updated = byLabel["montessori"] else { return }
            let crossings = [
                ("montessori-instructions", "montessori", original), ("montessori-answers", "original", updated),
            ]
            for (label, instructionsOf, answering) in crossings {
                let name = rd + "mechanism-\(label)-"
                let answered = try respond(
                    try file(rd + "mechanism-\(instructionsOf)-deduped.jsonl.gz"), teacher: answering, options: options,
                    name: name + "respond", out: name + "answered.jsonl.gz")
                let s = try probe(
                    answered, student: student, reference: inputs.probeReference, options: config.probing.learn,
                    name: name + "probe", out: name + "scored.jsonl.gz", shards: config.probeShards)
                try round.experiment.readFresh(label, from: s.path)
            }
        }
    }

    /// `montessori_set: chosen`: each updated teacher's choice among the original teacher's fresh
    /// candidates of a prompt, against the prompt's mean influence.
    func chosenGain(_ teachers: [(String, Artifact)], round rd: String, report round: inout RoundReport) throws {
        guard let original = teachers.first(where: { $0.0 == "original" })?.1 else { return }
        let scored = try file(rd + "mechanism-original-scored.jsonl.gz")
        let base = try logprobs(scored, model: original, name: rd + "mechanism-logprobs-original")
        for (label, t) in teachers where label != "original" {
            let updated = try logprobs(scored, model: t, name: rd + "mechanism-logprobs-\(label)")
            if let g = try ImplicitRewardChoice.gain(scored: scored.path, updated: updated.path, original: base.path) {
                round.experiment.chosenGain[label] = g
            }
        }
    }

    /// Training sets from the updated and the original teacher (and the control teacher, with
    /// experiment.control_student), cut to the same size; SFT of each student; held-out losses
    /// (in an experiment also the start's, the model the students were trained from).
    func trainStudents(
        _ r: Int, inputs: Inputs, teacher updated: Artifact, controlTeacher: Artifact?, models m: inout Models,
        report round: inout RoundReport
    ) throws {
        let rd = "round-\(r)/", seed = config.seed + 200 + r
        let start = m.baseline
        var teachers = [("montessori", updated), ("baseline", inputs.teacher)]
        if config.experiment.controlStudent, let controlTeacher { teachers.append(("control", controlTeacher)) }
        let sets: [(String, Artifact)]
        switch config.montessoriSet {
        case .written: sets = try writtenSets(rd, inputs: inputs, writers: teachers, seed: seed, report: &round)
        case .chosen: sets = try chosenSets(rd, inputs: inputs, choosers: teachers, seed: seed, report: &round)
        case .influence:
            // The control teacher chooses nothing here (no control student), but its choice is
            // scored; without pairs there is no update to score.
            let updatedTeachers = teachers.filter { $0.0 == "montessori" } + (controlTeacher.map { [("control", $0)] } ?? [])
            let scorers = round.pairs > 0 ? updatedTeachers : []
            sets = try influenceSets(rd, inputs: inputs, student: m.probed, scorers: scorers, seed: seed, report: &round)
        }
        let equal = try step(rd + "equalize", inputs: sets, settings: "same size", outputs: sets.map { rd + "train-\($0.0).jsonl.gz" }) { _ in
            try Self.equalize(sets.map { ($0.1.path, self.path(rd + "train-\($0.0).jsonl.gz")) })
        }
        round.trainingRecords = equal.result.intValue("records")
        guard round.trainingRecords > 0 else {
            throw RunError(
                "round \(r): a training set is empty (the teacher's outputs were all filtered); raise training.generate.prompts",
                exitStatus: ExitStatus.dataError.rawValue)
        }
        func student(_ label: String, from: Artifact) throws -> Artifact {
            try train(
                from: from, data: try file(rd + "train-\(label).jsonl.gz"), options: config.training.learn,
                name: rd + "sft-\(label)", out: rd + "student-\(label)", seed: seed)
        }
        m.montessori = try student("montessori", from: m.montessori)
        m.baseline = try student("baseline", from: m.baseline)
        round.montessoriSFT = try Self.metrics(path(rd + "student-montessori-metrics.jsonl"))
        let evalPath = rd + "eval.jsonl"
        try evaluate(m.montessori, against: m.baseline, heldout: inputs.heldout, name: rd + "eval", out: evalPath)
        round.montessoriLoss = try Self.doubles(path(evalPath), field: "loss")
        round.baselineLoss = try Self.doubles(path(evalPath), field: "loss_against")
        round.heldoutTokens = try Self.doubles(path(evalPath), field: "tokens", optional: true) // none in older eval files
        if sets.count == 3 {
            m.control = try student("control", from: m.control)
            try evaluate(m.control, against: m.baseline, heldout: inputs.heldout, name: rd + "eval-control", out: rd + "eval-control.jsonl")
            round.experiment.controlLoss = try Self.doubles(path(rd + "eval-control.jsonl"), field: "loss")
        }
        if config.experiment.enabled {
            // What the training data did: the model the students started from, on the same held-out
            // records (the students' own losses are eval.jsonl's).
            try evaluate(start, heldout: inputs.heldout, name: rd + "eval-start", out: rd + "eval-start.jsonl")
            round.experiment.startLoss = try Self.doubles(path(rd + "eval-start.jsonl"), field: "loss")
        }
    }

    /// `montessori_set: written`: each teacher's own training set, answered by `responder`.
    func writtenSets(
        _ rd: String, inputs: Inputs, writers: [(String, Artifact)], seed: Int, report round: inout RoundReport
    ) throws -> [(String, Artifact)] {
        var sets: [(String, Artifact)] = []
        for (label, t) in writers {
            var data = DataReport()
            sets.append(
                (
                    label,
                    try synthesize(
                        config.training, prefix: rd + label + "-", teacher: t, answeredBy: responder(for: t, inputs: inputs), seeds: inputs.seeds,
                        seed: seed, report: &data)
                ))
            Self.note(data, of: label, in: &round)
        }
        return sets
    }

    /// `montessori_set: chosen`: the original teacher's candidates for the training prompts (the
    /// baseline's own generation; with `training.records`, until that many prompts have one),
    /// one per prompt chosen by each teacher's implicit reward (the baseline: the first), each
    /// set answered by the original teacher.
    func chosenSets(
        _ rd: String, inputs: Inputs, choosers: [(String, Artifact)], seed: Int, report round: inout RoundReport
    ) throws -> [(String, Artifact)] {
        let respond = sampled(config.training.respond, seed: seed)
        let (i, candidates) = try trainingCandidates(rd, inputs: inputs, seed: seed)
        let original = try logprobs(candidates, model: inputs.teacher, name: rd + "choose-logprobs-original")
        var sets: [(String, Artifact)] = []
        for (label, teacher) in choosers {
            let scores = label == "baseline" ? nil : try logprobs(candidates, model: teacher, name: rd + "choose-logprobs-\(label)")
            let rule = scores.map { ImplicitRewardChoice.Rule.logRatio(updated: $0.path, original: original.path) } ?? .first
            let chosen = try choose(
                label, round: rd, candidates: candidates, rule: rule, scores: scores.map { [("updated", $0), ("original", original)] } ?? [])
            let answered = try self.respond(
                chosen, teacher: inputs.teacher, options: respond, name: rd + label + "-respond", out: rd + label + "-answered.jsonl.gz")
            Self.note(
                DataReport(generated: try count(i.path), deduplicated: try count(candidates.path), answered: try count(answered.path)),
                of: label, in: &round)
            sets.append((label, answered))
        }
        round.montessoriSet = .chosen
        return sets
    }

    /// `montessori_set: influence` (the oracle of `chosen`): the original teacher's candidates for
    /// the training prompts, all answered by it and probed on `student` (the round's probed
    /// student, whatever `students_start` says) as the probing set is; the Montessori set keeps
    /// each prompt's most influential candidate, the baseline its first, both from the same answers.
    /// In an experiment, each updated teacher of `scorers` (the DPO'd teacher, and the random-label
    /// control teacher where there is one) is scored as `chosen` would choose (the same steps, so a
    /// copy of a `chosen` run keeps them): its implicit reward's choice of these probed candidates
    /// against the first and the most influential.
    func influenceSets(
        _ rd: String, inputs: Inputs, student: Artifact, scorers: [(String, Artifact)], seed: Int, report round: inout RoundReport
    ) throws -> [(String, Artifact)] {
        let (i, candidates) = try trainingCandidates(rd, inputs: inputs, seed: seed)
        let answered = try respond(
            candidates, teacher: inputs.teacher, options: sampled(config.training.respond, seed: seed), name: rd + "choose-respond",
            out: rd + "choose-answered.jsonl.gz")
        let scored = try probe(
            answered, student: student, reference: inputs.probeReference, options: config.probing.learn, name: rd + "choose-probe",
            out: rd + "choose-scored.jsonl.gz", shards: config.probeShards)
        if config.experiment.enabled {
            let original = try logprobs(candidates, model: inputs.teacher, name: rd + "choose-logprobs-original")
            for (label, teacher) in scorers {
                let updated = try logprobs(candidates, model: teacher, name: rd + "choose-logprobs-\(label)")
                if let g = try ImplicitRewardChoice.gain(scored: scored.path, updated: updated.path, original: original.path) {
                    round.experiment.trainingChoice[label] = g
                }
            }
        }
        var sets: [(String, Artifact)] = []
        for (label, rule) in [("montessori", ImplicitRewardChoice.Rule.influence), ("baseline", .first)] {
            let chosen = try choose(label, round: rd, candidates: scored, rule: rule, scores: [])
            Self.note(
                DataReport(generated: try count(i.path), deduplicated: try count(candidates.path), answered: try count(chosen.path)),
                of: label, in: &round)
            sets.append((label, chosen))
        }
        round.montessoriSet = .influence
        return sets
    }

    /// The original teacher's candidates for the training prompts (the baseline's own generation;
    /// with `training.records`, until that many prompts have one): its instructions, and those
    /// left after dedupe.
    func trainingCandidates(_ rd: String, inputs: Inputs, seed: Int) throws -> (Artifact, Artifact) {
        try instructions(config.training, prefix: rd + "baseline-", teacher: inputs.teacher, seeds: inputs.seeds, seed: seed, perPrompt: true)
    }

    /// The step `{label}-choose`: one candidate of each prompt of `candidates` by `rule`, whose
    /// files are `scores` (the step's other inputs), as `{label}-chosen.jsonl.gz`.
    func choose(
        _ label: String, round rd: String, candidates: Artifact, rule: ImplicitRewardChoice.Rule, scores: [(String, Artifact)]
    ) throws -> Artifact {
        let chosen = rd + label + "-chosen.jsonl.gz", out = path(chosen)
        _ = try step(rd + label + "-choose", inputs: [("candidates", candidates)] + scores, settings: rule.setting, outputs: [chosen]) { _ in
            try ImplicitRewardChoice.choose(candidates: candidates.path, rule: rule, out: out)
        }
        return try file(chosen)
    }

    /// A training set's counts in the round's report (the Montessori and the baseline set's).
    static func note(_ data: DataReport, of label: String, in round: inout RoundReport) {
        if label == "montessori" { round.montessoriData = data } else if label == "baseline" { round.baselineData = data }
    }

    /// `mi-model logprobs` of `records`' teacher outputs (`raw`, chat-formatted with the end of
    /// turn as mi-dpo scores a completion, though not cut to `dpo.max_length`) under `model`, as
    /// the step `name` writing `name.jsonl.gz`. mi-model is not one of `modelTools` (its `export`
    /// takes no `--compute`), so the precision and chat template are passed here.
    func logprobs(_ records: Artifact, model: Artifact, name: String) throws -> Artifact {
        let out = name + ".jsonl.gz"
        let chat = config.chatTemplate.map { ["--chat-template", $0] } ?? []
        _ = try step(
            name, inputs: [("model", model), ("records", records)],
            settings: command("mi-model") + "logprobs --chat --completion-field raw --compute=\(compute) " + chatTemplateSetting, outputs: [out]
        ) { _ in
            try self.tool(
                "mi-model",
                ["logprobs", "--chat", "--completion-field", "raw", "--model", model.path, records.path, "-o", self.path(out), "--compute", compute]
                    + chat)
            return [:]
        }
        return try file(out)
    }

    /// Local data influence of `records` on `student`, as one process or as `shards` merged back.
    func probe(
        _ records: Artifact, student: Artifact, reference: Artifact, options: RunConfig.Options, name: String, out scoredPath: String,
        shards: Int
    ) throws -> Artifact {
        let shardPaths = Self.shardPaths(of: scoredPath, shards)
        _ = try step(
            name, inputs: [("student", student), ("reference", reference), ("records", records)],
            settings: command("mi-probe") + options.canonical + (shards > 1 ? " shards \(shards)" : ""),
            outputs: [scoredPath] + shardPaths
        ) { resume in
            let flags =
                ["--student", student.path, "--reference", reference.path, records.path] + options.arguments()
                + (resume ? ["--resume"] : [])
            try self.sharded("mi-probe", flags, input: records.path, out: scoredPath, shards: shards, resume: resume)
            return ["records": .number(JSONNumber(try self.count(self.path(scoredPath))))]
        }
        return try file(scoredPath)
    }

    /// `OUT-shard-K-of-N.jsonl.gz` for each shard K of `OUT.jsonl.gz` (none for one shard).
    static func shardPaths(of out: String, _ shards: Int) -> [String] {
        shards > 1 ? (0..<shards).map { shardPrefix(of: out) + "\($0)-of-\(shards).jsonl.gz" } : []
    }

    static func shardPrefix(of out: String) -> String { String(out.dropLast(".jsonl.gz".count)) + "-shard-" }

    /// A per-record tool on `input` as one process, or as `shards` processes (`--shard K/N`, each on
    /// its share of the cores, or Slurm array tasks) whose outputs are merged back into input order.
    func sharded(_ name: String, _ flags: [String], input: String, out: String, shards: Int, resume: Bool) throws {
        let shardPaths = Self.shardPaths(of: out, shards)
        if !resume {
            // Shard files of an earlier run with another shard count.
            let dir = Files.directory(of: path(out)), prefix = Files.basename(Self.shardPrefix(of: out))
            for f in Files.list(dir) where f.hasPrefix(prefix) { Files.remove(dir + "/" + f) }
        }
        if shards == 1 {
            try tool(name, flags + ["-o", path(out)])
            return
        }
        let threads = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / shards)
        // A resumed step reruns only the shards that did not finish.
        let pending = (0..<shards).filter { !(resume && Files.exists(path(shardPaths[$0]))) }
        if !pending.isEmpty {
            try tools(
                name, pending.map { flags + ["--shard", "\($0)/\(shards)", "-o", path(shardPaths[$0])] },
                environment: ["OPENBLAS_NUM_THREADS": String(threads)], parallel: true, shards: pending)
        }
        try Self.unshard(input: input, shards: shardPaths.map(path), out: path(out))
    }

    /// A random `exact_fraction` of the probing set probed exactly, beside the first-order scores.
    func exactAgreement(_ scored: Artifact, probeSet: Artifact, student: Artifact, reference: Artifact, round rd: String) throws -> ExactAgreement {
        let fraction = config.experiment.exactFraction
        let subsetPath = rd + "probe-exact-subset.jsonl.gz"
        _ = try step(
            rd + "probe-exact-subset", inputs: [("records", probeSet)], settings: "fraction \(fraction) by id hash",
            outputs: [subsetPath]
        ) { _ in
            let reader = RecordReader(paths: [probeSet.path])
            let w = try JSONLWriter(path: self.path(subsetPath))
            var n = 0
            while let rec = try reader.next() {
                let key = "exact " + ((try? rec.object.string("id")) ?? "\(rec.location.line)")
                if Fingerprint.selects(key, fraction: fraction) {
                    try w.write(rec.object)
                    n += 1
                }
            }
            try w.commit()
            return ["records": .number(JSONNumber(n))]
        }
        var options = RunConfig.Options()
        options.entries = config.probing.learn.entries.filter { $0.key != "method" } + [("method", .init(.scalar("exact"), location: ""))]
        let exact = try probe(
            try file(subsetPath), student: student, reference: reference, options: options,
            name: rd + "probe-exact", out: rd + "scored-exact.jsonl.gz", shards: 1)
        var firstOrder: [String: Double] = [:]
        let r = RecordReader(paths: [scored.path])
        while let rec = try r.next() { firstOrder[try rec.object.string("id")] = try rec.object.double("influence") }
        var a: [Double] = [], b: [Double] = []
        let e = RecordReader(paths: [exact.path])
        while let rec = try e.next() {
            guard let f = firstOrder[try rec.object.string("id")] else { continue }
            a.append(try rec.object.double("influence"))
            b.append(f)
        }
        let sameSign = zip(a, b).filter { ($0 > 0) == ($1 > 0) }.count
        return ExactAgreement(records: a.count, spearman: Evaluation.spearman(a, b), sameSign: sameSign)
    }

    /// DPO of `teacher` on `pairs` into the checkpoint `out`, its metrics in `metrics`.
    func dpo(_ teacher: Artifact, pairs: Artifact, name: String, out: String, metrics: String, seed: Int) throws -> Artifact {
        let options = shuffled(config.dpo, seed: seed)
        let s = try step(
            name, inputs: [("teacher", teacher), ("pairs", pairs)], settings: command("mi-dpo") + options.canonical,
            outputs: [out, metrics]
        ) { resume in
            try self.tool(
                "mi-dpo",
                [
                    "--model", teacher.path, "--pairs", pairs.path, "--out", self.path(out),
                    "--metrics", self.path(metrics),
                ] + options.arguments() + (resume ? ["--resume"] : []))
            return [:]
        }
        return Artifact(path: path(out), fingerprint: "step:" + s.fingerprint)
    }

    /// Held-out loss per record of `model`, and of `against` on the same records when given.
    func evaluate(_ model: Artifact, against: Artifact? = nil, heldout: Artifact, name: String, out: String) throws {
        let evalOptions = config.eval
        let models = against.map { [("montessori", model), ("baseline", $0)] } ?? [("model", model)]
        _ = try step(
            name, inputs: models + [("heldout", heldout)],
            settings: command("mi-eval") + evalOptions.canonical, outputs: [out]
        ) { _ in
            try self.tool(
                "mi-eval",
                ["--model", model.path] + (against.map { ["--against", $0.path] } ?? [])
                    + ["--data", heldout.path, "-o", self.path(out)] + evalOptions.arguments())
            return [:]
        }
    }

    /// A training tool's options with the run's shuffling: `--shuffle --seed` unless the section
    /// decides the order itself.
    func shuffled(_ options: RunConfig.Options, seed: Int) -> RunConfig.Options {
        guard config.shuffle, !options.has("shuffle"), !options.has("no_shuffle") else { return options }
        var defaults = RunConfig.Options()
        defaults.entries = [("shuffle", .init(.bool(true), location: "")), ("seed", .init(.scalar(String(seed)), location: ""))]
        return options.over(defaults)
    }

    /// A phase's flags for mi-generate or mi-respond over the run's `sampling`, with `seed` as the
    /// sampling seed unless the phase sets its own.
    func sampled(_ options: RunConfig.Options, seed: Int) -> RunConfig.Options {
        var seeded = RunConfig.Options()
        seeded.entries = [("seed", ConfigNode(.scalar(String(seed)), location: ""))]
        return options.over(config.sampling).over(seeded)
    }

    /// Generate → dedupe (against the seeds) → respond, each its own step and file.
    func synthesize(
        _ phase: RunConfig.Phase, prefix: String, teacher: Artifact, answeredBy responder: Artifact, seeds: Artifact, seed: Int,
        report: inout DataReport
    ) throws -> Artifact {
        let respond = sampled(phase.respond, seed: seed)
        let answered = prefix + "answered.jsonl.gz"
        let (i, d) = try instructions(phase, prefix: prefix, teacher: teacher, seeds: seeds, seed: seed)
        let a = try self.respond(d, teacher: responder, options: respond, name: prefix + "respond", out: answered)
        report.generated = try count(i.path)
        report.deduplicated = try count(d.path)
        report.answered = try count(a.path)
        return a
    }

    /// `phase`'s instructions from `teacher`: generated to the phase's `records` (with
    /// `perPrompt`, prompts) when it sets one, else from its prompts.
    func instructions(_ phase: RunConfig.Phase, prefix: String, teacher: Artifact, seeds: Artifact, seed: Int, perPrompt: Bool = false) throws
        -> (instructions: Artifact, deduped: Artifact)
    {
        let generate = sampled(phase.generate, seed: seed)
        if let count = phase.records {
            return try instructions(count: count, generate: generate, prefix: prefix, teacher: teacher, seeds: seeds, perPrompt: perPrompt)
        }
        return try instructions(generate, extending: nil, prefix: prefix, suffix: "", teacher: teacher, seeds: seeds)
    }

    /// Who answers `teacher`'s instructions (`responder`): that teacher, or the original one.
    func responder(for teacher: Artifact, inputs: Inputs) -> Artifact {
        config.responder == .original ? inputs.teacher : teacher
    }

    /// `instructions` answered by `teacher` (mi-respond) as the step `name`.
    func respond(_ instructions: Artifact, teacher: Artifact, options: RunConfig.Options, name: String, out answered: String) throws -> Artifact {
        let shards = config.respondShards
        _ = try step(
            name, inputs: [("teacher", teacher), ("instructions", instructions)],
            settings: command("mi-respond") + options.canonical + (shards > 1 ? " shards \(shards)" : ""),
            outputs: [answered] + Self.shardPaths(of: answered, shards)
        ) { resume in
            let flags = ["--teacher", teacher.path, instructions.path] + options.arguments() + (resume ? ["--resume"] : [])
            try self.sharded("mi-respond", flags, input: instructions.path, out: answered, shards: shards, resume: resume)
            return [:]
        }
        return try file(answered)
    }

    /// One generate step and the dedupe of its output (against the seeds) as the next step; with
    /// `extending`, the generate step continues that earlier output (`mi-generate --extend`).
    func instructions(
        _ generate: RunConfig.Options, extending: Artifact?, prefix: String, suffix: String, teacher: Artifact, seeds: Artifact
    ) throws -> (instructions: Artifact, deduped: Artifact) {
        let instructions = prefix + "instructions\(suffix).jsonl.gz", deduped = prefix + "deduped\(suffix).jsonl.gz"
        let dedupe = config.dedupe
        _ = try step(
            prefix + "generate" + suffix, inputs: [("teacher", teacher), ("seeds", seeds)] + (extending.map { [("extend", $0)] } ?? []),
            settings: command("mi-generate") + generate.canonical, outputs: [instructions]
        ) { resume in
            try self.tool(
                "mi-generate",
                ["--teacher", teacher.path, "--seeds", seeds.path, "-o", self.path(instructions)] + generate.arguments()
                    + (extending.map { ["--extend", $0.path] } ?? []) + (resume ? ["--resume"] : []))
            return [:]
        }
        let i = try file(instructions)
        _ = try step(
            prefix + "dedupe" + suffix, inputs: [("instructions", i), ("seeds", seeds)], settings: command("mi-dedupe") + dedupe.canonical,
            outputs: [deduped]
        ) { _ in
            try self.tool("mi-dedupe", [i.path, "--against", seeds.path, "-o", self.path(deduped)] + dedupe.arguments())
            return [:]
        }
        return (i, try file(deduped))
    }

    /// Generate and dedupe until at least `count` instructions are left, then the first `count`
    /// (`PREFIX-selected`). A further generate step continues the previous one's output to more
    /// prompts (as many more as the yield so far says are needed, plus a tenth, at most 3× the
    /// prompts so far), so the instructions kept are the first `count` of one long run, whatever the steps
    /// were: a teacher whose format degrades gets more prompts, not a smaller training set.
    /// With `perPrompt`, `count` counts prompts with at least one instruction left, and the
    /// selection keeps all instructions of the first `count` such prompts.
    func instructions(count: Int, generate: RunConfig.Options, prefix: String, teacher: Artifact, seeds: Artifact, perPrompt: Bool = false)
        throws -> (instructions: Artifact, deduped: Artifact)
    {
        var prompts = Int(generate.value("prompts") ?? "") ?? 16
        var options = generate, k = 1
        func survivors(_ d: Artifact) throws -> Int { perPrompt ? try ImplicitRewardChoice.prompts(d.path).count : try self.count(d.path) }
        var (i, d) = try instructions(options, extending: nil, prefix: prefix, suffix: "", teacher: teacher, seeds: seeds)
        var kept = try survivors(d)
        while kept < count {
            k += 1
            guard k <= Self.maxGenerateSteps else {
                let what = perPrompt ? "prompts with an instruction" : "instructions"
                throw RunError(
                    "\(prefix)generate: \(kept) \(what) after deduplication from \(prompts) prompts in \(k - 1) steps, fewer than records \(count); "
                        + "the teacher's output rarely parses (see \(i.path)); raise generate.prompts or lower records",
                    exitStatus: ExitStatus.dataError.rawValue)
            }
            let yield = Double(kept) / Double(prompts)
            let more = yield > 0 ? Int((Double(count - kept) / yield * 1.1).rounded(.up)) + 1 : 3 * prompts
            prompts += min(more, 3 * prompts)
            options = options.setting([("prompts", String(prompts))])
            (i, d) = try instructions(options, extending: i, prefix: prefix, suffix: "-\(k)", teacher: teacher, seeds: seeds)
            kept = try survivors(d)
        }
        let source = d, selected = path(prefix + "selected.jsonl.gz")
        _ = try step(
            prefix + "select", inputs: [("deduped", d)], settings: "first \(count)" + (perPrompt ? " prompts" : ""),
            outputs: [prefix + "selected.jsonl.gz"]
        ) { _ in
            perPrompt
                ? try ImplicitRewardChoice.firstPrompts(source.path, out: selected, count: count)
                : try Self.equalize([(source.path, selected)], count: count)
        }
        return (i, try file(prefix + "selected.jsonl.gz"))
    }

    /// Generate steps one phase may take to reach its `records` (the first and its continuations).
    static let maxGenerateSteps = 6

    /// SFT of `model` on `data` into `out`, keeping the AdamW state so the next probe starts from it.
    func train(from model: Artifact, data: Artifact, options sectionOptions: RunConfig.Options, name: String, out: String, seed: Int) throws
        -> Artifact
    {
        let metrics = out + "-metrics.jsonl"
        let options = shuffled(sectionOptions, seed: seed)
        guard try count(data.path) > 0 else {
            throw RunError(
                "\(name): \(data.path) has no records (the teacher's outputs were all filtered); generate more prompts",
                exitStatus: ExitStatus.dataError.rawValue)
        }
        let s = try step(
            name, inputs: [("model", model), ("data", data)], settings: command("mi-sft") + options.canonical,
            outputs: [out, metrics]
        ) { resume in
            try self.tool(
                "mi-sft",
                [
                    "--model", model.path, "--data", data.path, "--out", self.path(out), "--save-optimizer",
                    "--metrics", self.path(metrics),
                ] + options.arguments() + (resume ? ["--resume"] : []))
            return [:]
        }
        return Artifact(path: path(out), fingerprint: "step:" + s.fingerprint)
    }

    // MARK: - Steps

    /// Runs one step unless it already finished with the same fingerprint.
    func step(
        _ name: String, inputs: [(String, Artifact)], settings: String, outputs: [String],
        _ body: (_ resume: Bool) throws -> JSONObject
    ) throws -> (fingerprint: String, result: JSONObject) {
        var h = SHA256()
        h.update(Array("step \(name)\nsettings \(settings)\n".utf8))
        for (role, a) in inputs { h.update(Array("input \(role) \(a.fingerprint)\n".utf8)) }
        let fingerprint = h.finish()
        let paths = outputs.map(path)
        try Interrupts.check() // stopped between steps: start no new one
        totalSteps += 1
        let previous = ledger.entry(name)
        if let p = previous, p.status == .done, p.fingerprint == fingerprint, paths.allSatisfy(Files.exists) {
            skipped.append(name)
            Log.debug("\(name): done already")
            return (fingerprint, p.result)
        }
        let resume = previous?.status == .running && previous?.fingerprint == fingerprint
        if !resume {
            removeOutputs(paths)
        }
        for p in paths { try Files.makeDirectories(Files.directory(of: p)) }
        Log.info(resume ? "\(name): resuming" : "\(name)")
        try ledger.record(.init(step: name, fingerprint: fingerprint, status: .running, result: JSONObject()))
        lastCommand = []
        currentStep = name
        let clock = ContinuousClock(), started = clock.now
        var result: JSONObject
        do {
            result = try body(resume)
        } catch let e as RunError where resume && e.exitStatus == ExitStatus.config.rawValue {
            // The tool refused to resume (settings or saved state differ): start the step over.
            Log.info("\(name): cannot resume (\(e.description)); starting it over")
            removeOutputs(paths)
            result = try body(false)
        }
        for p in paths where !Files.exists(p) { throw RunError("step \(name) finished without writing \(p)") }
        if !lastCommand.isEmpty { result["command"] = .array(lastCommand.map(JSONValue.string)) }
        let took = started.duration(to: clock.now).components
        let seconds = Double(took.seconds) + Double(took.attoseconds) * 1e-18
        try ledger.record(.init(step: name, fingerprint: fingerprint, status: .done, result: result, seconds: seconds, resumed: resume))
        if resume { resumed.append(name) } else { ran.append(name) }
        hashes.save()
        return (fingerprint, result)
    }

    /// A step's outputs with their partial (stage) and previous (checkpoint swap) companions.
    func removeOutputs(_ paths: [String]) {
        for p in paths { for suffix in ["", ".partial", ".previous"] { Files.remove(p + suffix) } }
    }

    /// The tools that run a model, and so take `--compute`.
    static let modelTools: Set<String> = ["mi-generate", "mi-respond", "mi-probe", "mi-sft", "mi-dpo", "mi-eval"]

    /// The products' precision every model tool of this run uses: the config's, MI_COMPUTE's, or the CPU's fastest.
    var compute: String {
        config.compute ?? getenv("MI_COMPUTE").flatMap { ComputePrecision(rawValue: String(cString: $0))?.rawValue }
            ?? ComputePrecision.fastest.rawValue
    }

    /// A tool as a step's settings name it: with the precision of its products and the chat
    /// template (a file by its content) when it runs a model.
    func command(_ tool: String) -> String {
        (config.commands[tool] ?? tool) + " " + (Self.modelTools.contains(tool) ? "--compute=\(compute) " : "")
            + (Self.modelTools.contains(tool) ? chatTemplateSetting : "")
    }

    /// `--chat-template=` of the config, with a template file's content hash, so editing the file
    /// reruns the steps that used it.
    var chatTemplateSetting: String {
        guard let t = config.chatTemplate else { return "" }
        if ChatFormat.Style(rawValue: t) != nil { return "--chat-template=\(t) " }
        return "--chat-template=\(t) (sha256 \((try? hashes.fingerprint(t)) ?? "unreadable")) "
    }

    func tool(_ name: String, _ arguments: [String]) throws { try tools(name, [arguments], environment: [:]) }

    /// The tools that continue a partial output with `--resume`.
    static let resumableTools: Set<String> = ["mi-generate", "mi-respond", "mi-probe", "mi-sft", "mi-dpo"]

    /// Runs invocations of one tool side by side; the first failure is reported after all end.
    /// With `executor: slurm` the invocations of a `parallel` step (shards) are one job array, and
    /// with `slurm.serial_steps: slurm` every other tool is a job too.
    /// `shards` names the invocations' shards (their Slurm task ids; default 0, 1, …).
    func tools(_ name: String, _ invocations: [[String]], environment: [String: String], parallel: Bool = false, shards: [Int]? = nil) throws {
        let exe = config.commands[name] ?? toolDirectory + "/" + name
        var pids: [pid_t] = []
        let chat = config.chatTemplate.map { ["--chat-template", $0] } ?? []
        let shared = (Self.modelTools.contains(name) ? ["--compute", compute] + chat : []) + (quiet ? ["--quiet"] : [])
        if config.executor == .slurm && (parallel || config.slurm.serialSteps == .slurm) {
            let ids = shards ?? Array(invocations.indices)
            let tasks = zip(ids, invocations).map { id, arguments -> SlurmExecutor.Task in
                let command = [exe] + arguments + shared
                let resumes = Self.resumableTools.contains(name) && !arguments.contains("--resume")
                return .init(id: id, arguments: command, retry: resumes ? command + ["--resume"] : command)
            }
            lastCommand = tasks[0].arguments
            let label = invocations.count > 1 ? "\(currentStep) (\(invocations.count) × \(name))" : "\(currentStep) (\(name))"
            try SlurmExecutor(settings: config.slurm, directory: path("slurm")).run(
                step: currentStep, label: label, tasks: tasks, environment: environment)
            return
        }
        for arguments in invocations {
            let args = arguments + shared
            Log.debug(([exe] + args).joined(separator: " "))
            do { pids.append(try Subprocess.start(exe, args, environment: environment)) } catch {
                // Stop the ones already started before reporting.
                for p in pids { kill(p, SIGTERM) }
                _ = try? Subprocess.wait(pids)
                throw error
            }
        }
        lastCommand = [exe] + invocations[0] + shared
        for outcome in try Subprocess.wait(pids) {
            switch outcome {
            case .exited(0): continue
            case let .exited(code):
                throw RunError("\(name) failed (exit \(code)); rerun mi-run to continue from this step", exitStatus: code)
            case let .signaled(sig):
                throw RunError("\(name) was stopped by signal \(sig); rerun mi-run to continue from this step", exitStatus: 128 + sig)
            }
        }
    }

    func external(_ p: String) throws -> Artifact { Artifact(path: p, fingerprint: try hashes.fingerprint(p)) }
    func file(_ relative: String) throws -> Artifact { Artifact(path: path(relative), fingerprint: try hashes.fingerprint(path(relative))) }

    func count(_ p: String) throws -> Int { try Self.records(p) }

    // MARK: - In-process steps

    /// The reference set's probing part and held-out part: the held-out records are the last
    /// ones, or with `spread` every record whose share of the held-out count reaches a new whole
    /// number (record i is held out when ⌊(i+1)·h/n⌋ > ⌊i·h/n⌋), so they are spread evenly.
    public static func split(_ reference: String, fraction: Double, spread: Bool = false, probe: String, heldout: String) throws -> JSONObject {
        let total = try records(reference)
        let held = Int((Double(total) * fraction).rounded())
        guard held >= 1, total - held >= 1 else {
            throw RunError(
                "\(reference): \(total) records cannot be split into a probing and a held-out part",
                exitStatus: ExitStatus.dataError.rawValue)
        }
        let k = total - held
        let r = RecordReader(paths: [reference])
        let a = try JSONLWriter(path: probe), b = try JSONLWriter(path: heldout)
        var i = 0
        while let rec = try r.next() {
            let isHeldOut = spread ? (i + 1) * held / total > i * held / total : i >= k
            try (isHeldOut ? b : a).write(rec.object)
            i += 1
        }
        try a.commit()
        try b.commit()
        return ["probe": .number(JSONNumber(k)), "heldout": .number(JSONNumber(held))]
    }

    /// The first n records of each input, n the smallest input's size (or `count` if smaller):
    /// both students see as much data. Streams: the inputs are counted, then copied.
    static func equalize(_ files: [(input: String, output: String)], count: Int = .max) throws -> JSONObject {
        var n = count
        for f in files { n = min(n, try records(f.input)) }
        if files.isEmpty { n = 0 }
        for f in files {
            let r = RecordReader(paths: [f.input])
            let w = try JSONLWriter(path: f.output)
            var copied = 0
            while copied < n, let rec = try r.next() {
                try w.write(rec.object)
                copied += 1
            }
            try w.commit()
        }
        return ["records": .number(JSONNumber(n))]
    }

    /// The pairs with chosen and rejected swapped where a fair coin (from `seed` and the pair's
    /// position) says so: the control teacher learns from the same pairs without the signal.
    static func randomLabels(_ input: String, out: String, seed: UInt64) throws -> JSONObject {
        let r = RecordReader(paths: [input])
        let w = try JSONLWriter(path: out)
        var i: UInt64 = 0, swapped = 0
        while let rec = try r.next() {
            var o = rec.object
            var rng = SplitMix64(seed: seed ^ (i &* 0x9E37_79B9_7F4A_7C15))
            i += 1
            if rng.next() >> 63 == 1 {
                for (a, b) in [
                    ("chosen", "rejected"), ("chosen_influence", "rejected_influence"), ("chosen_id", "rejected_id"),
                    ("chosen_adjusted_influence", "rejected_adjusted_influence"),
                ] {
                    let x = o[a], y = o[b]
                    o[a] = y
                    o[b] = x
                }
                swapped += 1
            }
            o["labels"] = .string("random")
            try w.write(o)
        }
        try w.commit()
        return ["pairs": .number(JSONNumber(Int(i))), "swapped": .number(JSONNumber(swapped))]
    }

    static func records(_ p: String) throws -> Int {
        let r = RecordReader(paths: [p])
        var n = 0
        while try r.next() != nil { n += 1 }
        return n
    }

    /// Merges the outputs of `mi-probe --shard k/N` back into the input's order: each shard holds
    /// its records in input order, so the next record of an input id's shard is that record.
    /// The probe's shards merged back into input order, checked as mi-merge checks them.
    static func unshard(input: String, shards: [String], out: String) throws {
        let w = try JSONLWriter(path: out)
        do {
            _ = try ShardMerge.merge(input: [input], shards: shards, into: w)
            try w.commit()
        } catch {
            w.discard()
            throw error
        }
    }

    /// Every record's number `field`. `optional`: a file whose first record lacks the field gives
    /// none (a file from before the field); once the first has it, a record without it or with
    /// something else there is an error.
    static func doubles(_ p: String, field: String, optional: Bool = false) throws -> [Double] {
        let r = RecordReader(paths: [p])
        var out: [Double] = []
        var first = true
        while let rec = try r.next() {
            if optional, first, rec.object[field] == nil { return [] }
            first = false
            out.append(try rec.object.double(field))
        }
        return out
    }

    /// How far the probe's reference parts agree (nil: the records have no `influence_parts`).
    static func referencePartAgreement(_ p: String) throws -> ReferencePartAgreement? {
        let r = RecordReader(paths: [p])
        var agreement = ReferencePartAgreement()
        while let rec = try r.next() {
            guard case .array(let parts)? = rec.object["influence_parts"] else { return nil }
            agreement.add(
                parts: parts.map { if case .number(let n) = $0 { n.double } else { .nan } }, prompt: try? rec.object.string("prompt_id"),
                responseLength: Pairing.responseCharacters(rec.object))
        }
        return agreement.records > 0 ? agreement : nil
    }

    static func strings(_ p: String, field: String) throws -> [String] {
        let r = RecordReader(paths: [p])
        var out: [String] = []
        while let rec = try r.next() { out.append(try rec.object.string(field)) }
        return out
    }

    static func metrics(_ p: String) throws -> [JSONObject] {
        guard Files.exists(p) else { return [] }
        let r = RecordReader(paths: [p])
        var out: [JSONObject] = []
        while let rec = try r.next() { out.append(rec.object) }
        return out
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(uniqueKeysAndValues: elements) }
}

extension JSONObject {
    func intValue(_ key: String) -> Int { (try? int(key)) ?? 0 }
    func doubleValue(_ key: String) -> Double { (try? double(key)) ?? .nan }
}

extension ExperimentReport {
    /// A fresh set's influences and response lengths (0 without a response), from its scored file.
    mutating func readFresh(_ label: String, from path: String) throws {
        let r = RecordReader(paths: [path])
        var influences: [Double] = [], lengths: [Int] = []
        while let rec = try r.next() {
            influences.append(try rec.object.double("influence"))
            lengths.append(Pairing.responseCharacters(rec.object) ?? 0)
        }
        fresh[label] = influences
        freshLength[label] = lengths
    }
}
