import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

#if canImport(Glibc)
    import Glibc
#endif

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-generate",
        abstract: "Have a teacher write candidate instructions from few-shot prompts of seed tasks.",
        discussion: """
            Each prompt lists 8 example tasks (6 seeds and, once there are enough, 2 instructions \
            generated in earlier rounds) and asks for one new instruction inside <instruction> tags; \
            --samples completions are drawn per prompt. Kept samples become instruction records (the \
            candidates of a prompt consecutive); rejected ones are counted by reason on stderr.
            """)

    @Option(help: "Teacher model: a .gguf file, a Hugging Face directory or a checkpoint.")
    var teacher: String
    @Option(help: "Seed tasks (Alpaca or Self-Instruct form).")
    var seeds: [String]
    @Option(help: "Number of prompts.") var prompts = 16
    @Option(help: "Samples per prompt.") var samples = 4
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).") var out = "-"
    @Option(help: "Sampling temperature.") var temperature = 1.0
    @Option(help: "Nucleus sampling mass.") var topP = 0.9
    @Option(help: "Subtracted from the logit of every token the completion already holds.") var presencePenalty = 1.0
    @Option(help: "Subtracted from a token's logit once per earlier occurrence in the completion.") var frequencyPenalty = 0.0
    @Option(help: "Longest completion in tokens.") var maxTokens = 128
    @Option(help: "Run seed.") var seed: UInt64 = 42
    @Option(help: "Prompts per round: a round's prompts see instructions of earlier rounds only.") var round = 8
    @Option(help: "Sequences decoded together.") var batchSize = 16
    @Option(help: "Text the teacher's answer starts with (kept in raw).") var prefill = "<instruction>"
    @Flag(help: "Continue OUT.partial of an interrupted run (same settings): the file ends as an uninterrupted run's.")
    var resume = false
    @Option(
        help: ArgumentHelp(
            "Continue FROM, a finished output of the same settings with fewer --prompts: OUT gets what one run with these --prompts writes.",
            discussion: "Every record of FROM is checked first (prompt text, sample seed, teacher, sampling); its last round is generated again.",
            valueName: "FROM"))
    var extend: String?
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if prompts < 1 || samples < 1 || round < 1 || batchSize < 1 || maxTokens < 1 { throw ValidationError("counts must be >= 1") }
        if resume && OutputFile.partialPath(for: out) == nil {
            throw ValidationError("--resume needs --out FILE (\(out) is written straight, with no partial file to continue)")
        }
    }

    func run() throws {
        common.apply(program: "mi-generate")
        computeOptions.apply()
        try StageRunner.run(resumable: true) {
            let policy = badRecords.policy()
            let seedTexts = try Generate.readSeeds(RecordReader(paths: seeds, options: badRecords.readOptions, badRecords: policy))
            if seedTexts.count < 6 { throw ValidationError("need at least 6 seed tasks, got \(seedTexts.count)") }
            let model = try LoadedModel(path: teacher, chatTemplate: chatTemplate.value)
            var p = SamplingParameters()
            p.temperature = temperature
            p.topP = topP
            p.presencePenalty = presencePenalty
            p.frequencyPenalty = frequencyPenalty
            p.maxTokens = maxTokens
            let gen = Generate(model: model, seeds: seedTexts, prompts: prompts, samples: samples, sampling: p, seed: seed)
            gen.round = round
            gen.slots = batchSize
            gen.prefill = prefill
            var settings = ResumeSettings()
            settings.add(model: "teacher", model)
            settings.add(inputs: "seeds", seeds)
            for (k, v) in [("prompts", prompts), ("samples", samples), ("round", round), ("max_tokens", maxTokens)] { settings.add(k, v) }
            for (k, v) in [
                ("temperature", temperature), ("top_p", topP), ("presence_penalty", presencePenalty), ("frequency_penalty", frequencyPenalty),
            ] {
                settings.add(k, v)
            }
            settings.add("seed", seed)
            settings.add("prefill", prefill)
            if let extend { settings.add(inputs: "extend", [extend]) }
            if resume { try settings.verify(for: out) }
            var start = 0
            var kept: [JSONObject] = []
            if resume, let partial = OutputFile.partialPath(for: out), access(partial, R_OK) == 0 {
                (start, kept) = try recover(partial)
                Log.info("resuming at prompt \(start) with \(kept.count) records kept from \(partial)")
            } else if let extend {
                (start, kept) = try continuation(of: extend, by: gen)
                Log.info("continuing \(extend) at prompt \(start) with \(kept.count) of its records")
            }
            let writer = try JSONLWriter.resuming(path: out, with: kept, flushThreshold: 1 << 20)
            try settings.record(for: out)
            let progress = Progress(label: "mi-generate", unit: "prompts", total: prompts)
            do {
                try gen.run(from: start, existing: kept.compactMap { try? $0.string("instruction") }, out: writer, progress: progress)
                try writer.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.leavePartial() }
                throw e
            }
            let reasons = gen.rejected.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
            progress.finish(
                "\(prompts) prompts, \(prompts * samples) samples: \(gen.written + kept.count) kept"
                    + (reasons.isEmpty ? "" : "; rejected: " + reasons.joined(separator: ", ")))
        }
    }

    /// The records of a finished earlier output this run continues, cut back to its last whole
    /// round (that round may have had fewer prompts), after checking that this run writes them.
    func continuation(of path: String, by gen: Generate) throws -> (Int, [JSONObject]) {
        let reader = RecordReader(paths: [path])
        var records: [JSONObject] = [], lines: [RecordLocation] = []
        while let r = try reader.next() {
            records.append(r.object)
            lines.append(r.location)
        }
        if let (n, problem) = gen.continuationProblem(records) {
            throw StreamError.badRecord(lines[n], message: "cannot be continued by this run: \(problem)")
        }
        return cut(records)
    }

    /// Complete records of an interrupted output, cut back to the last whole round: prompts from
    /// that round on are generated again, which gives the same records.
    func recover(_ path: String) throws -> (Int, [JSONObject]) {
        let reader = RecordReader(paths: [path])
        var records: [JSONObject] = []
        do {
            while let r = try reader.next() { records.append(r.object) }
        } catch {
            // A torn tail (cut member or line) ends the usable part.
            guard case .corruptStream = error else {
                if case .badRecord = error {} else { throw error }
                return cut(records)
            }
        }
        return cut(records)
    }

    func cut(_ records: [JSONObject]) -> (Int, [JSONObject]) {
        let indices = records.compactMap { (try? $0.string("prompt_id")).flatMap { Int($0.dropFirst()) } }
        guard let last = indices.max() else { return (0, []) }
        let start = last / round * round
        return (start, zip(records, indices).filter { $0.1 < start }.map(\.0))
    }
}
