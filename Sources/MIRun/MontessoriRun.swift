#if canImport(Glibc)
import Glibc
#endif
import MICore
import MIStages
import MIStream

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

    /// Writes a text file in the run directory atomically (temporary name, then rename).
    public func writeText(_ text: String, to relative: String) throws {
        let final = path(relative), temporary = final + ".partial"
        guard let f = fopen(temporary, "wb") else { throw RunError("cannot create \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let written = fwrite(bytes, 1, bytes.count, f)
        let ok = written == bytes.count && fflush(f) == 0 && fsync(fileno(f)) == 0
        fclose(f)
        guard ok, rename(temporary, final) == 0 else { throw RunError("cannot write \(final): \(String(cString: strerror(errno)))") }
    }

    // MARK: - The loop

    /// Runs (or continues) the whole loop and returns its report.
    public func run() throws -> RunReport {
        defer { hashes.save() }
        var report = RunReport()
        let teacher0 = try external(config.teacher)
        let seeds = try external(config.seeds)
        let reference = try external(config.reference)
        var probeReference = reference
        var heldout: Artifact
        if let h = config.heldout {
            heldout = try external(h)
        } else {
            let fraction = config.heldoutFraction
            let split = try step("split", inputs: [("reference", reference)], settings: "heldout_fraction \(fraction)",
                                 outputs: ["reference-probe.jsonl", "heldout.jsonl"]) { _ in
                try Self.split(reference.path, fraction: fraction, probe: self.path("reference-probe.jsonl"), heldout: self.path("heldout.jsonl"))
            }
            probeReference = try file("reference-probe.jsonl")
            heldout = try file("heldout.jsonl")
            report.split = (split.result.intValue("probe"), split.result.intValue("heldout"))
        }

        var student = try external(config.student)
        if let warmup = config.warmup {
            let data = try synthesize(warmup, prefix: "warmup/", teacher: teacher0, seeds: seeds, seed: config.seed + 100, report: &report.warmup)
            student = try train(from: student, data: data, options: warmup.learn, name: "warmup/sft", out: "warmup/student")
            report.warmup.trainingRecords = try count(data.path)
        }

        var teacher = teacher0
        var montessori = student, baseline = student
        for r in 1...config.rounds {
            var round = RoundReport(round: r)
            let rd = "round-\(r)/"
            let probeSet = try synthesize(config.probing, prefix: rd + "probe-", teacher: teacher, seeds: seeds, seed: config.seed + r, report: &round.probing)
            let probeOptions = config.probing.learn
            let scoredPath = rd + "scored.jsonl.gz"
            let shards = config.probeShards
            let shardPaths = shards > 1 ? (0..<shards).map { rd + "scored-shard-\($0)-of-\(shards).jsonl.gz" } : []
            _ = try step(rd + "probe", inputs: [("student", montessori), ("reference", probeReference), ("records", probeSet)],
                         settings: command("mi-probe") + probeOptions.canonical + (shards > 1 ? " shards \(shards)" : ""),
                         outputs: [scoredPath] + shardPaths) { resume in
                let flags = ["--student", montessori.path, "--reference", probeReference.path, probeSet.path] + probeOptions.arguments()
                    + (resume ? ["--resume"] : [])
                if !resume {
                    // Shard files of an earlier run with another shard count.
                    let dir = Files.directory(of: self.path(scoredPath))
                    for f in Files.list(dir) where f.hasPrefix("scored-shard-") { Files.remove(dir + "/" + f) }
                }
                if shards == 1 {
                    try self.tool("mi-probe", flags + ["-o", self.path(scoredPath)])
                } else {
                    // N processes, each on its share of the cores; their outputs merged back into input order.
                    let threads = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) / shards)
                    // A resumed step reruns only the shards that did not finish.
                    let pending = (0..<shards).filter { !(resume && Files.exists(self.path(shardPaths[$0]))) }
                    if !pending.isEmpty {
                        try self.tools("mi-probe", pending.map { flags + ["--shard", "\($0)/\(shards)", "-o", self.path(shardPaths[$0])] },
                                       environment: ["OPENBLAS_NUM_THREADS": String(threads)])
                    }
                    try Self.unshard(input: probeSet.path, shards: shardPaths.map(self.path), out: self.path(scoredPath))
                }
                return ["records": .number(JSONNumber(try self.count(self.path(scoredPath))))]
            }
            let scored = try file(scoredPath)
            round.influences = try Self.doubles(scored.path, field: "influence")

            let pairsPath = rd + "pairs.jsonl.gz"
            _ = try step(rd + "pair", inputs: [("scored", scored)], settings: command("mi-pair") + config.pair.canonical, outputs: [pairsPath]) { _ in
                try self.tool("mi-pair", [scored.path, "-o", self.path(pairsPath)] + self.config.pair.arguments())
                return ["pairs": .number(JSONNumber(try self.count(self.path(pairsPath))))]
            }
            let pairs = try file(pairsPath)
            round.pairs = try count(pairs.path)
            round.promptsWithPairs = Set(try Self.strings(pairs.path, field: "prompt_id")).count

            var updated = teacher
            if round.pairs > 0 {
                let out = rd + "teacher", metrics = rd + "dpo-metrics.jsonl"
                let dpoOptions = config.dpo
                let s = try step(rd + "dpo", inputs: [("teacher", teacher), ("pairs", pairs)], settings: command("mi-dpo") + dpoOptions.canonical,
                                 outputs: [out, metrics]) { resume in
                    try self.tool("mi-dpo", ["--model", teacher.path, "--pairs", pairs.path, "--out", self.path(out),
                                             "--metrics", self.path(metrics)] + dpoOptions.arguments() + (resume ? ["--resume"] : []))
                    return [:]
                }
                updated = Artifact(path: path(out), fingerprint: "step:" + s.fingerprint)
                round.dpo = try Self.metrics(path(metrics))
            } else {
                Log.info("round \(r): no preference pairs; the teacher stays as it is")
            }

            let trainM = try synthesize(config.training, prefix: rd + "montessori-", teacher: updated, seeds: seeds,
                                        seed: config.seed + 200 + r, report: &round.montessoriData)
            let trainB = try synthesize(config.training, prefix: rd + "baseline-", teacher: teacher0, seeds: seeds,
                                        seed: config.seed + 200 + r, report: &round.baselineData)
            let equal = try step(rd + "equalize", inputs: [("montessori", trainM), ("baseline", trainB)], settings: "same size",
                                 outputs: [rd + "train-montessori.jsonl.gz", rd + "train-baseline.jsonl.gz"]) { _ in
                try Self.equalize([(trainM.path, self.path(rd + "train-montessori.jsonl.gz")), (trainB.path, self.path(rd + "train-baseline.jsonl.gz"))])
            }
            round.trainingRecords = equal.result.intValue("records")
            guard round.trainingRecords > 0 else {
                throw RunError("round \(r): a training set is empty (the teacher's outputs were all filtered); raise training.generate.prompts",
                               exitStatus: ExitStatus.dataError.rawValue)
            }
            montessori = try train(from: montessori, data: try file(rd + "train-montessori.jsonl.gz"), options: config.training.learn,
                                   name: rd + "sft-montessori", out: rd + "student-montessori")
            baseline = try train(from: baseline, data: try file(rd + "train-baseline.jsonl.gz"), options: config.training.learn,
                                 name: rd + "sft-baseline", out: rd + "student-baseline")
            round.montessoriSFT = try Self.metrics(path(rd + "student-montessori-metrics.jsonl"))

            let evalPath = rd + "eval.jsonl"
            let evalOptions = config.eval
            _ = try step(rd + "eval", inputs: [("montessori", montessori), ("baseline", baseline), ("heldout", heldout)],
                         settings: command("mi-eval") + evalOptions.canonical, outputs: [evalPath]) { _ in
                try self.tool("mi-eval", ["--model", montessori.path, "--against", baseline.path, "--data", heldout.path,
                                          "-o", self.path(evalPath)] + evalOptions.arguments())
                return [:]
            }
            round.montessoriLoss = try Self.doubles(path(evalPath), field: "loss")
            round.baselineLoss = try Self.doubles(path(evalPath), field: "loss_against")
            report.rounds.append(round)
            teacher = updated
        }
        report.steps = (ran.count, resumed.count, skipped.count)
        return report
    }

    /// Generate → dedupe (against the seeds) → respond, each its own step and file.
    func synthesize(_ phase: RunConfig.Phase, prefix: String, teacher: Artifact, seeds: Artifact, seed: Int,
                    report: inout DataReport) throws -> Artifact {
        var seeded = RunConfig.Options()
        seeded.entries = [("seed", ConfigNode(.scalar(String(seed)), location: ""))]
        let generate = phase.generate.over(config.sampling).over(seeded)
        let respond = phase.respond.over(config.sampling).over(seeded)
        let dedupe = config.dedupe
        let instructions = prefix + "instructions.jsonl.gz", deduped = prefix + "deduped.jsonl.gz", answered = prefix + "answered.jsonl.gz"
        _ = try step(prefix + "generate", inputs: [("teacher", teacher), ("seeds", seeds)], settings: command("mi-generate") + generate.canonical,
                     outputs: [instructions]) { resume in
            try self.tool("mi-generate", ["--teacher", teacher.path, "--seeds", seeds.path, "-o", self.path(instructions)]
                          + generate.arguments() + (resume ? ["--resume"] : []))
            return [:]
        }
        let i = try file(instructions)
        _ = try step(prefix + "dedupe", inputs: [("instructions", i), ("seeds", seeds)], settings: command("mi-dedupe") + dedupe.canonical,
                     outputs: [deduped]) { _ in
            try self.tool("mi-dedupe", [i.path, "--against", seeds.path, "-o", self.path(deduped)] + dedupe.arguments())
            return [:]
        }
        let d = try file(deduped)
        _ = try step(prefix + "respond", inputs: [("teacher", teacher), ("instructions", d)], settings: command("mi-respond") + respond.canonical,
                     outputs: [answered]) { resume in
            try self.tool("mi-respond", ["--teacher", teacher.path, d.path, "-o", self.path(answered)]
                          + respond.arguments() + (resume ? ["--resume"] : []))
            return [:]
        }
        report.generated = try count(i.path)
        report.deduplicated = try count(d.path)
        report.answered = try count(path(answered))
        return try file(answered)
    }

    /// SFT of `model` on `data` into `out`, keeping the AdamW state so the next probe starts from it.
    func train(from model: Artifact, data: Artifact, options: RunConfig.Options, name: String, out: String) throws -> Artifact {
        let metrics = out + "-metrics.jsonl"
        guard try count(data.path) > 0 else {
            throw RunError("\(name): \(data.path) has no records (the teacher's outputs were all filtered); generate more prompts",
                           exitStatus: ExitStatus.dataError.rawValue)
        }
        let s = try step(name, inputs: [("model", model), ("data", data)], settings: command("mi-sft") + options.canonical,
                         outputs: [out, metrics]) { resume in
            try self.tool("mi-sft", ["--model", model.path, "--data", data.path, "--out", self.path(out), "--save-optimizer",
                                     "--metrics", self.path(metrics)] + options.arguments() + (resume ? ["--resume"] : []))
            return [:]
        }
        return Artifact(path: path(out), fingerprint: "step:" + s.fingerprint)
    }

    // MARK: - Steps

    /// Runs one step unless it already finished with the same fingerprint.
    func step(_ name: String, inputs: [(String, Artifact)], settings: String, outputs: [String],
              _ body: (_ resume: Bool) throws -> JSONObject) throws -> (fingerprint: String, result: JSONObject) {
        var h = SHA256()
        h.update(Array("step \(name)\nsettings \(settings)\n".utf8))
        for (role, a) in inputs { h.update(Array("input \(role) \(a.fingerprint)\n".utf8)) }
        let fingerprint = h.finish()
        let paths = outputs.map(path)
        try Interrupts.check()   // stopped between steps: start no new one
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
        try ledger.record(.init(step: name, fingerprint: fingerprint, status: .done, result: result))
        if resume { resumed.append(name) } else { ran.append(name) }
        hashes.save()
        return (fingerprint, result)
    }

    /// A step's outputs with their partial (stage) and previous (checkpoint swap) companions.
    func removeOutputs(_ paths: [String]) {
        for p in paths { for suffix in ["", ".partial", ".previous"] { Files.remove(p + suffix) } }
    }

    func command(_ tool: String) -> String { (config.commands[tool] ?? tool) + " " }

    func tool(_ name: String, _ arguments: [String]) throws { try tools(name, [arguments], environment: [:]) }

    /// Runs invocations of one tool side by side; the first failure is reported after all end.
    func tools(_ name: String, _ invocations: [[String]], environment: [String: String]) throws {
        let exe = config.commands[name] ?? toolDirectory + "/" + name
        var pids: [pid_t] = []
        for arguments in invocations {
            let args = arguments + (quiet ? ["--quiet"] : [])
            Log.debug(([exe] + args).joined(separator: " "))
            do { pids.append(try Subprocess.start(exe, args, environment: environment)) } catch {
                // Stop the ones already started before reporting.
                for p in pids { kill(p, SIGTERM) }
                _ = try? Subprocess.wait(pids)
                throw error
            }
        }
        lastCommand = [exe] + invocations[0] + (quiet ? ["--quiet"] : [])
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

    static func split(_ reference: String, fraction: Double, probe: String, heldout: String) throws -> JSONObject {
        let total = try records(reference)
        let held = Int((Double(total) * fraction).rounded())
        guard held >= 1, total - held >= 1 else {
            throw RunError("\(reference): \(total) records cannot be split into a probing and a held-out part",
                           exitStatus: ExitStatus.dataError.rawValue)
        }
        let k = total - held
        let r = RecordReader(paths: [reference])
        let a = try JSONLWriter(path: probe), b = try JSONLWriter(path: heldout)
        var i = 0
        while let rec = try r.next() { try (i < k ? a : b).write(rec.object); i += 1 }
        try a.commit()
        try b.commit()
        return ["probe": .number(JSONNumber(k)), "heldout": .number(JSONNumber(held))]
    }

    /// The first n records of each input, n the smallest input's size: both students see as much
    /// data. Streams: the inputs are counted, then copied.
    static func equalize(_ files: [(input: String, output: String)]) throws -> JSONObject {
        var n = Int.max
        for f in files { n = min(n, try records(f.input)) }
        if files.isEmpty { n = 0 }
        for f in files {
            let r = RecordReader(paths: [f.input])
            let w = try JSONLWriter(path: f.output)
            var copied = 0
            while copied < n, let rec = try r.next() { try w.write(rec.object); copied += 1 }
            try w.commit()
        }
        return ["records": .number(JSONNumber(n))]
    }

    static func records(_ p: String) throws -> Int {
        let r = RecordReader(paths: [p])
        var n = 0
        while try r.next() != nil { n += 1 }
        return n
    }

    /// Merges the outputs of `mi-probe --shard k/N` back into the input's order: each shard holds
    /// its records in input order, so the next record of an input id's shard is that record.
    static func unshard(input: String, shards: [String], out: String) throws {
        let source = RecordReader(paths: [input])
        let readers = shards.map { RecordReader(paths: [$0]) }
        let w = try JSONLWriter(path: out)
        while let r = try source.next() {
            let id = (try? r.object.string("id")) ?? "\(r.location.source):\(r.location.line)"
            let k = LocalInfluence.shard(of: id, count: shards.count)
            guard let scored = try readers[k].next(), ((try? scored.object.string("id")) ?? id) == id else {
                throw RunError("\(shards[k]) does not hold record \(id) of \(input) where expected", exitStatus: ExitStatus.dataError.rawValue)
            }
            try w.write(scored.object)
        }
        for (k, reader) in readers.enumerated() where try reader.next() != nil {
            throw RunError("\(shards[k]) holds more records than \(input) gives it", exitStatus: ExitStatus.dataError.rawValue)
        }
        try w.commit()
    }

    static func doubles(_ p: String, field: String) throws -> [Double] {
        let r = RecordReader(paths: [p])
        var out: [Double] = []
        while let rec = try r.next() { out.append(try rec.object.double(field)) }
        return out
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
}
