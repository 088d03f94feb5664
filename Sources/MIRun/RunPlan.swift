import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// `mi-run --plan`: what a config will cost on this machine, before running it. A calibration runs
/// the real tools on this machine for seconds each, with the config's own flags and models (one
/// decoding batch of mi-generate and of mi-respond, a few SFT and DPO steps, the probe on one and
/// on three records, mi-eval on four), and every step of the loop is then priced from the work
/// the config gives it. What no calibration can know in advance is assumed and said so: the share
/// of samples kept after parsing (measured on the calibration batch), after dedupe (0.9) and the
/// preference pairs per probing prompt (0.8 with `mode: all`, else 0.5).
public struct RunPlan: Sendable {
    public struct Row: Sendable {
        public var step: String
        public var work: String
        public var seconds: Double
    }

    public var rows: [Row] = []
    /// What the calibration measured (seconds, or a share), by name.
    public var calibration: [(String, Double)] = []
    public var calibrationSeconds = 0.0
    public var total: Double { rows.map(\.seconds).reduce(0, +) }

    static let keptAfterDedupe = 0.9

    /// The plan as a markdown table with the calibration under it.
    public var markdown: String {
        var out = "| step | work | predicted |\n|---|---|---|\n"
        for r in rows { out += "| \(r.step) | \(r.work) | \(Self.duration(r.seconds)) |\n" }
        out += "| **total** | | **\(Self.duration(total))** |\n\n"
        out += "Calibration (\(Self.duration(calibrationSeconds)) on this machine): "
        out += calibration.map { "\($0.0) \(SVGChart.trimmed($0.1, 3))" }.joined(separator: ", ") + ".\n"
        out += "Assumed: \(Int(Self.keptAfterDedupe * 100)) % of parsed samples survive dedupe; pairs per probing prompt as in RunPlan.\n"
        return out
    }

    public var json: JSONObject {
        var o = JSONObject()
        o["total_seconds"] = JSONNumber.value(total)
        o["calibration_seconds"] = JSONNumber.value(calibrationSeconds)
        o["steps"] = .array(
            rows.map {
                .object(
                    JSONObject(uniqueKeysAndValues: [
                        ("step", .string($0.step)), ("work", .string($0.work)), ("seconds", JSONNumber.value($0.seconds)),
                    ]))
            })
        o["calibration"] = .object(JSONObject(uniqueKeysAndValues: calibration.map { ($0.0, JSONNumber.value($0.1)) }))
        return o
    }

    static func duration(_ s: Double) -> String {
        if s < 90 { return "\(Int(s.rounded())) s" }
        if s < 5400 { return "\(SVGChart.trimmed(s / 60, 1)) min" }
        return "\(SVGChart.trimmed(s / 3600, 2)) h"
    }
}

/// Calibrated costs: a fixed part per process and a part per unit of work.
struct Costs {
    var load = 0.0
    var generateBatch = 0.0, generateTokens = 1.0, keptShare = 0.5
    var respondBatch = 0.0, respondTokens = 1.0
    var sftStep = 0.0, sftFixed = 0.0
    var dpoStep = 0.0, dpoFixed = 0.0
    var probeRecord = 0.0, probeFixed = 0.0
    var exactRecord = 0.0, exactFixed = 0.0
    var evalRecord = 0.0
}

extension MontessoriRun {
    /// Calibrates on this machine (in RUN/.mi-run/plan, removed afterwards) and prices every step.
    public func plan() throws -> RunPlan {
        let start = Self.now()
        let dir = ".mi-run/plan/"
        Files.remove(path(dir))
        try Files.makeDirectories(path(dir))
        defer { Files.remove(path(dir)) }
        let costs = try calibrate(dir)
        var plan = RunPlan()
        plan.calibrationSeconds = Self.now() - start
        plan.calibration = [
            ("model load s", costs.load), ("generate batch s", costs.generateBatch), ("kept share", costs.keptShare),
            ("respond batch s", costs.respondBatch), ("SFT step s", costs.sftStep), ("DPO step s", costs.dpoStep),
            ("probe s/record", costs.probeRecord), ("exact probe s/record", costs.exactRecord), ("eval s/record", costs.evalRecord),
        ]
        if let layers = config.studentLayers, let blocks = try? LlamaParameters.parseLayerList(layers, layers: Int.max).count {
            plan.calibration.append(("cut student blocks", Double(blocks)))
        }
        plan.rows = try priced(costs)
        return plan
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    func timed(_ name: String, _ arguments: [String]) throws -> Double {
        let t0 = Self.now()
        try tool(name, arguments + (quiet ? [] : ["--quiet"]))
        return Self.now() - t0
    }

    /// An integer option of a tool, with the tool's default.
    static func int(_ o: RunConfig.Options, _ key: String, _ fallback: Int) -> Int { o.value(key).flatMap { Int($0) } ?? fallback }
    static func double(_ o: RunConfig.Options, _ key: String, _ fallback: Double) -> Double {
        o.value(key).flatMap { Double($0) } ?? fallback
    }

    func calibrate(_ dir: String) throws -> Costs {
        var c = Costs()
        let teacher = config.teacher, p = { self.path(dir + $0) }
        // One decoding batch of the probing set's generation and of its answers.
        let generate = config.probing.generate.over(config.sampling)
        let samples = Self.int(generate, "samples", 4), batch = Self.int(generate, "batch_size", 16)
        let prompts = max(1, batch / samples)
        c.generateTokens = Double(Self.int(generate, "max_tokens", 128))
        let g = generate.setting([("prompts", String(prompts)), ("round", String(prompts))])
        c.generateBatch = try timed("mi-generate", ["--teacher", teacher, "--seeds", config.seeds, "-o", p("instructions.jsonl")] + g.arguments())
        let kept = try count(p("instructions.jsonl"))
        c.keptShare = Double(kept) / Double(prompts * samples)
        guard kept >= 2 else {
            throw RunError("--plan: the teacher's calibration batch kept \(kept) of \(prompts * samples) samples; cannot calibrate")
        }
        let respond = config.probing.respond.over(config.sampling)
        c.respondTokens = Double(Self.int(respond, "max_tokens", 512))
        let rb = Self.int(respond, "batch_size", 16)
        try Self.head(p("instructions.jsonl"), rb, to: p("batch.jsonl"))
        let answered = min(kept, rb)
        let r = try timed("mi-respond", ["--teacher", teacher, p("batch.jsonl"), "-o", p("answered.jsonl")] + respond.arguments())
        try calibrateTraining(dir, &c)
        // A partial batch scaled to a full one, linearly (decoding more at once costs less per sequence).
        c.respondBatch = c.load + max(0, r - c.load) * Double(rb) / Double(answered)
        try calibrateProbe(dir, &c)
        return c
    }

    /// A few SFT and DPO steps (per step from the metrics' elapsed_s; the rest is fixed cost) and
    /// mi-eval on four records.
    func calibrateTraining(_ dir: String, _ c: inout Costs) throws {
        let p = { self.path(dir + $0) }
        var student = config.student
        if let layers = config.studentLayers {
            // The students are the cut model, so their steps are timed on it.
            _ = try timed("mi-model", Self.cutArguments(student, layers: layers, out: p("cut.gguf")))
            student = p("cut.gguf")
        }
        let sft = config.training.learn.setting([("max_steps", "4"), ("epochs", "8")])
        let ts = try timed(
            "mi-sft",
            ["--model", student, "--data", p("answered.jsonl"), "--out", p("student"), "--save-optimizer", "--metrics", p("sft.jsonl")]
                + sft.arguments())
        (c.sftStep, c.sftFixed) = try Self.perStep(p("sft.jsonl"), wall: ts)
        let perStep = Self.int(config.dpo, "batch_size", 1) * Self.int(config.dpo, "grad_accum", 1)
        try Self.pairsForCalibration(p("answered.jsonl"), count: 3 * perStep, to: p("pairs.jsonl"))
        let dpo = config.dpo.setting([("max_steps", "3"), ("heldout_fraction", "0")])
        let td = try timed(
            "mi-dpo", ["--model", config.teacher, "--pairs", p("pairs.jsonl"), "--out", p("teacher"), "--metrics", p("dpo.jsonl")] + dpo.arguments())
        (c.dpoStep, c.dpoFixed) = try Self.perStep(p("dpo.jsonl"), wall: td)
        let heldout = config.heldout ?? config.reference
        // Two models loaded, then each record scored by both: one record and four.
        try Self.head(heldout, 1, to: p("heldout-1.jsonl"))
        try Self.head(heldout, 4, to: p("heldout-4.jsonl"))
        let n = try count(p("heldout-4.jsonl"))
        func eval(_ data: String) throws -> Double {
            try timed(
                "mi-eval", ["--model", p("student"), "--against", p("student"), "--data", data, "-o", p("eval.jsonl")] + config.eval.arguments())
        }
        let t1 = try eval(p("heldout-1.jsonl")), tn = try eval(p("heldout-4.jsonl"))
        c.evalRecord = n > 1 ? max(0, tn - t1) / Double(n - 1) : t1
        c.load = max(0, t1 - c.evalRecord) / 2
    }

    /// The probe on one and on three records (per record: the difference over two; the rest is
    /// the fixed cost), exactly too when the experiment samples exact scores.
    func calibrateProbe(_ dir: String, _ c: inout Costs) throws {
        let p = { self.path(dir + $0) }
        let n = min(3, try count(p("answered.jsonl")))
        try Self.head(p("answered.jsonl"), 1, to: p("one.jsonl"))
        try Self.head(p("answered.jsonl"), n, to: p("some.jsonl"))
        func probe(_ options: RunConfig.Options) throws -> (Double, Double) {
            let args = ["--student", p("student"), "--reference", config.reference] + options.arguments()
            let t1 = try timed("mi-probe", args + [p("one.jsonl"), "-o", p("scored-1.jsonl")])
            let tn = try timed("mi-probe", args + [p("some.jsonl"), "-o", p("scored-n.jsonl")])
            let per = n > 1 ? max(0, tn - t1) / Double(n - 1) : t1
            return (per, max(0, t1 - per))
        }
        (c.probeRecord, c.probeFixed) = try probe(config.probing.learn)
        if config.experiment.exactFraction > 0, config.probing.learn.value("method") == "first-order" {
            (c.exactRecord, c.exactFixed) = try probe(config.probing.learn.setting([("method", "exact")]))
        }
    }

    /// (seconds per step, fixed seconds) from a metrics file's elapsed_s and the process's wall time.
    static func perStep(_ metrics: String, wall: Double) throws -> (Double, Double) {
        let elapsed = try doubles(metrics, field: "elapsed_s")
        guard elapsed.count >= 2 else { return (wall, 0) }
        let per = (elapsed.last! - elapsed.first!) / Double(elapsed.count - 1)
        return (per, max(0, wall - per * Double(elapsed.count)))
    }

    static func head(_ input: String, _ n: Int, to out: String) throws {
        let r = RecordReader(paths: [input])
        let w = try JSONLWriter(path: out)
        var i = 0
        while i < n, let rec = try r.next() {
            try w.write(rec.object)
            i += 1
        }
        try w.commit()
    }

    /// `count` pairs of neighbouring answered records (their raw outputs, round and round) under
    /// the first one's prompt: enough for DPO to take a few steps of the config's shape.
    static func pairsForCalibration(_ answered: String, count: Int, to out: String) throws {
        let r = RecordReader(paths: [answered])
        var records: [JSONObject] = []
        while let rec = try r.next() { records.append(rec.object) }
        let w = try JSONLWriter(path: out)
        for i in 0..<(records.count >= 2 ? count : 0) {
            var o = JSONObject()
            o["prompt"] = records[i % records.count]["prompt"] ?? .string("")
            o["chosen"] = records[i % records.count]["raw"] ?? .string("")
            o["rejected"] = records[(i + 1) % records.count]["raw"] ?? .string("")
            o["prompt_id"] = .string("calibration-\(i)")
            try w.write(o)
        }
        try w.commit()
    }
}

/// Every step of the loop priced from the calibration (the step names are the ledger's).
extension MontessoriRun {
    func priced(_ c: Costs) throws -> [RunPlan.Row] {
        var rows: [RunPlan.Row] = []
        func add(_ step: String, _ work: String, _ seconds: Double) { rows.append(.init(step: step, work: work, seconds: seconds)) }
        let heldout: Int
        if let h = config.heldout {
            heldout = try count(h)
        } else {
            let total = try count(config.reference)
            heldout = Int((Double(total) * config.heldoutFraction).rounded())
            add("split", "\(total) reference records", 0)
        }
        if let layers = config.studentLayers { add("student", "blocks \(layers) of \(config.student)", 0) }
        if let warmup = config.warmup {
            let records = synthesized(warmup, prefix: "warmup/", c, add)
            add("warmup/sft", "\(sftSteps(records, warmup.learn)) steps", sftSeconds(records, warmup.learn, c))
        }
        let probeMethodExact = config.probing.learn.value("method") ?? "exact" == "exact"
        let perRecord = probeMethodExact ? (c.exactRecord > 0 ? c.exactRecord : c.probeRecord) : c.probeRecord
        for r in 1...config.rounds {
            let rd = "round-\(r)/"
            let probing = synthesized(config.probing, prefix: rd + "probe-", c, add)
            add(rd + "probe", "\(probing) records", c.probeFixed + Double(probing) * perRecord)
            if config.experiment.exactFraction > 0, !probeMethodExact {
                let n = Int((Double(probing) * config.experiment.exactFraction).rounded(.up))
                add(rd + "probe-exact-subset", "\(n) records", 0)
                add(rd + "probe-exact", "\(n) records, exact", c.exactFixed + Double(n) * c.exactRecord)
            }
            add(rd + "pair", "", 0)
            let prompts = Self.int(config.probing.generate.over(config.sampling), "prompts", 16)
            let pairs = Int(Double(prompts) * ((config.pair.value("mode") ?? "all") == "all" ? 0.8 : 0.5))
            let dpoSteps = self.dpoSteps(pairs)
            if config.experiment.selection {
                // About one chosen and one rejected candidate per pair.
                add(rd + "selection-sets", "about \(pairs) records per set", 0)
                for label in ["chosen", "rejected", "random"] {
                    add(rd + "sft-selection-\(label)", "\(sftSteps(pairs, config.training.learn)) steps", sftSeconds(pairs, config.training.learn, c))
                }
                add(rd + "eval-selection", "\(heldout) records, 2 models", 2 * c.load + Double(heldout) * c.evalRecord)
                add(rd + "eval-selection-random", "\(heldout) records, 1 model", Self.onePass(heldout, c))
            }
            add(rd + "dpo", "about \(pairs) pairs, \(dpoSteps) steps", c.dpoFixed + Double(dpoSteps) * c.dpoStep)
            if config.experiment.control {
                add(rd + "pairs-random", "", 0)
                add(rd + "dpo-control", "\(dpoSteps) steps", c.dpoFixed + Double(dpoSteps) * c.dpoStep)
            }
            if config.experiment.mechanismPrompts > 0 { pricedMechanism(rd, c, add) }
            var students = ["montessori", "baseline"] + (config.experiment.controlStudent ? ["control"] : [])
            var records = Int.max
            switch config.montessoriSet {
            case .written:
                for label in students { records = min(records, synthesized(config.training, prefix: rd + label + "-", c, add)) }
            case .chosen: records = pricedChosenSets(rd, students: students, c, add)
            case .influence:
                students = ["montessori", "baseline"]
                records = pricedInfluenceSets(rd, c, add)
            }
            add(rd + "equalize", "\(records) records per student", 0)
            for label in students {
                add(rd + "sft-\(label)", "\(sftSteps(records, config.training.learn)) steps", sftSeconds(records, config.training.learn, c))
            }
            add(rd + "eval", "\(heldout) records, 2 models", 2 * c.load + Double(heldout) * c.evalRecord)
            if students.count == 3 { add(rd + "eval-control", "\(heldout) records, 2 models", 2 * c.load + Double(heldout) * c.evalRecord) }
            if config.experiment.enabled {
                add(rd + "eval-start", "\(heldout) records, 1 model", Self.onePass(heldout, c))
            }
        }
        return rows
    }

    /// The fresh candidates of each teacher (experiment.mechanism_prompts), their crossing and,
    /// with `montessori_set: chosen`, each teacher's log-probabilities of the original's.
    func pricedMechanism(_ rd: String, _ c: Costs, _ add: (String, String, Double) -> Void) {
        var phase = config.probing
        phase.records = nil
        phase.generate = config.probing.generate.setting([
            ("prompts", String(config.experiment.mechanismPrompts)), ("samples", String(config.experiment.mechanismSamples)),
            ("round", String(config.experiment.mechanismPrompts)),
        ])
        var fresh = 0
        let teachers = ["original", "montessori"] + (config.experiment.control ? ["control"] : [])
        for label in teachers {
            let n = synthesized(phase, prefix: rd + "mechanism-\(label)-", c, add)
            add(rd + "mechanism-\(label)-probe", "\(n) records", c.probeFixed + Double(n) * c.probeRecord)
            fresh = n
        }
        if config.montessoriSet == .chosen {
            for label in teachers {
                add(rd + "mechanism-logprobs-\(label)", "\(fresh) records", Self.onePass(fresh, c))
            }
        }
        if config.experiment.mechanismCrossed {
            let r = phase.respond.over(config.sampling), rb = max(1, Self.int(r, "batch_size", 16)), batches = (fresh + rb - 1) / rb
            let tokens = Double(Self.int(r, "max_tokens", 512)) / c.respondTokens
            for (label, _) in RoundReport.crossings {
                add(
                    rd + "mechanism-\(label)-respond", "\(fresh) records, \(batches) batches",
                    c.load + Double(batches) * max(0, c.respondBatch - c.load) * tokens)
                add(rd + "mechanism-\(label)-probe", "\(fresh) records", c.probeFixed + Double(fresh) * c.probeRecord)
            }
        }
    }

    /// Generate → dedupe → respond for one phase; returns the answered records expected. With
    /// `choosing` (`montessori_set: chosen`) the phase's `records` counts prompts with a candidate
    /// left, nothing is answered, and the prompts are returned.
    func synthesized(
        _ phase: RunConfig.Phase, prefix: String, _ c: Costs, _ add: (String, String, Double) -> Void, choosing: Bool = false
    ) -> Int {
        let g = phase.generate.over(config.sampling)
        let samples = Self.int(g, "samples", 4), configured = Self.int(g, "prompts", 16)
        let round = max(1, Self.int(g, "round", 8)), batch = max(1, Self.int(g, "batch_size", 16))
        let tokens = Double(Self.int(g, "max_tokens", 128)) / c.generateTokens
        /// Prompts from..<to as one generate step.
        func generate(_ name: String, from: Int, to: Int) {
            var batches = 0
            for start in stride(from: from, to: to, by: round) { batches += (min(round, to - start) * samples + batch - 1) / batch }
            add(
                prefix + name, "\(to - from) prompts × \(samples), \(batches) batches",
                c.load + Double(batches) * max(0, c.generateBatch - c.load) * tokens)
        }
        func deduped(_ prompts: Int) -> (parsed: Int, kept: Int) {
            let parsed = Int(Double(prompts * samples) * c.keptShare)
            return (parsed, Int(Double(parsed) * RunPlan.keptAfterDedupe))
        }
        // What `records` counts: records, or (choosing) prompts with at least one record left.
        let promptShare = 1 - pow(1 - c.keptShare * RunPlan.keptAfterDedupe, Double(samples))
        func counted(_ prompts: Int, _ kept: Int) -> Int { choosing ? Int(Double(prompts) * promptShare) : kept }
        generate("generate", from: 0, to: configured)
        var (parsed, kept) = deduped(configured)
        add(prefix + "dedupe", "about \(parsed) → \(kept) records", 0)
        var count = counted(configured, kept)
        if let records = phase.records {
            // Generate continues until `records` are left after dedupe: one continuation of as
            // many prompts as the calibrated yield says (its last round generated again).
            if count < records {
                let perPrompt = choosing ? promptShare : Double(samples) * c.keptShare * RunPlan.keptAfterDedupe
                let prompts = Int((Double(records) / max(perPrompt, 1e-3) * 1.1).rounded(.up))
                generate("generate-2", from: max(0, (configured - 1) / round * round), to: prompts)
                (parsed, kept) = deduped(prompts)
                add(prefix + "dedupe-2", "about \(parsed) → \(kept) records", 0)
                count = counted(prompts, kept)
            }
            count = min(count, records)
            add(prefix + "select", "the first \(count) \(choosing ? "prompts" : "records")", 0)
        }
        if !choosing {
            let (work, seconds) = responded(count, phase, c)
            add(prefix + "respond", work, seconds)
        }
        return count
    }

    /// The work and seconds of answering `records` of `phase`.
    func responded(_ records: Int, _ phase: RunConfig.Phase, _ c: Costs) -> (String, Double) {
        let r = phase.respond.over(config.sampling)
        let rb = max(1, Self.int(r, "batch_size", 16)), rbatches = (records + rb - 1) / rb
        let rtokens = Double(Self.int(r, "max_tokens", 512)) / c.respondTokens
        return ("\(records) records, \(rbatches) batches", c.load + Double(rbatches) * max(0, c.respondBatch - c.load) * rtokens)
    }

    /// `montessori_set: chosen`: the original teacher's candidates (the baseline's generation),
    /// each choosing teacher's log-probabilities of them (a forward pass a record, priced as half
    /// of mi-eval's two), one chosen set per student, each answered; returns the records per set.
    func pricedChosenSets(_ rd: String, students: [String], _ c: Costs, _ add: (String, String, Double) -> Void) -> Int {
        let prompts = synthesized(config.training, prefix: rd + "baseline-", c, add, choosing: true)
        let candidates = chosenCandidates(prompts, c)
        for label in ["original"] + students.filter({ $0 != "baseline" }) {
            add(rd + "choose-logprobs-\(label)", "about \(candidates) records", Self.onePass(candidates, c))
        }
        for label in students {
            add(rd + label + "-choose", "\(prompts) prompts", 0)
            let (work, seconds) = responded(prompts, config.training, c)
            add(rd + label + "-respond", work, seconds)
        }
        return prompts
    }

    /// `montessori_set: influence`: the original teacher's candidates, all answered and probed (in
    /// an experiment also the original, the DPO'd and the control teacher's log-probabilities of
    /// them), and the two chosen sets; returns the records per set.
    func pricedInfluenceSets(_ rd: String, _ c: Costs, _ add: (String, String, Double) -> Void) -> Int {
        let prompts = synthesized(config.training, prefix: rd + "baseline-", c, add, choosing: true)
        let candidates = chosenCandidates(prompts, c)
        let (work, seconds) = responded(candidates, config.training, c)
        add(rd + "choose-respond", work, seconds)
        add(rd + "choose-probe", "\(candidates) records", c.probeFixed + Double(candidates) * c.probeRecord)
        if config.experiment.enabled {
            for label in ["original", "montessori"] + (config.experiment.control ? ["control"] : []) {
                add(rd + "choose-logprobs-\(label)", "about \(candidates) records", Self.onePass(candidates, c))
            }
        }
        for label in ["montessori", "baseline"] { add(rd + label + "-choose", "\(prompts) prompts", 0) }
        return prompts
    }

    /// One model's forward pass over `records` (mi-eval of one model, mi-model logprobs): half of
    /// the calibrated two-model evaluation.
    static func onePass(_ records: Int, _ c: Costs) -> Double { c.load + Double(records) * c.evalRecord / 2 }

    /// The candidates expected for `prompts` training prompts with at least one left.
    func chosenCandidates(_ prompts: Int, _ c: Costs) -> Int {
        let g = config.training.generate.over(config.sampling), samples = Double(Self.int(g, "samples", 4))
        return Int(Double(prompts) * max(1, samples * c.keptShare * RunPlan.keptAfterDedupe))
    }

    func sftSteps(_ records: Int, _ o: RunConfig.Options) -> Int {
        let perStep = max(1, Self.int(o, "batch_size", 1) * Self.int(o, "grad_accum", 1))
        return Int((Double(records) * Self.double(o, "epochs", 1) / Double(perStep)).rounded(.up))
    }

    /// SFT steps at the calibrated step time, scaled by the batch against the calibration's.
    func sftSeconds(_ records: Int, _ o: RunConfig.Options, _ c: Costs) -> Double {
        let scale = Double(Self.int(o, "batch_size", 1)) / Double(max(1, Self.int(config.training.learn, "batch_size", 1)))
        return c.sftFixed + Double(sftSteps(records, o)) * c.sftStep * scale
    }

    func dpoSteps(_ pairs: Int) -> Int {
        let trained = Double(pairs) * (1 - Self.double(config.dpo, "heldout_fraction", 0))
        let perStep = max(1, Self.int(config.dpo, "batch_size", 1) * Self.int(config.dpo, "grad_accum", 1))
        return Int((trained * Self.double(config.dpo, "epochs", 1) / Double(perStep)).rounded(.up))
    }
}
