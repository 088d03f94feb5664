import MICore
import MIStream

/// Writes candidate instructions with a teacher: N few-shot prompts of 8 example tasks each (2 of
/// them from instructions generated in earlier rounds, once there are enough), K samples per
/// prompt, the last <instruction> block of each, filtered. All randomness derives from (seed,
/// prompt index, sample index), and prompts are generated in rounds of fixed size, so a run is
/// reproducible whatever the decoding batch size, and a resumed run writes the same file.
public final class Generate {
    public let loaded: LoadedModel
    public let seeds: [String]
    public var prompts: Int
    public var samples: Int
    public var sampling: SamplingParameters
    public var runSeed: UInt64
    public var round = 8
    public var slots = 16
    /// Text the teacher's answer starts with (written by us, kept in `raw`): small teachers
    /// follow the format far more often when the opening tag is already there.
    public var prefill = "<instruction>"
    public private(set) var rejected: [InstructionPrompt.Rejection: Int] = [:]
    public private(set) var written = 0
    private var pool: [String] = []

    public init(model: LoadedModel, seeds: [String], prompts: Int, samples: Int, sampling: SamplingParameters, seed: UInt64) {
        loaded = model
        self.seeds = seeds
        self.prompts = prompts
        self.samples = samples
        self.sampling = sampling
        runSeed = seed
        self.sampling.stopTokens.formUnion(model.stopTokens)
    }

    func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var r = SplitMix64(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15))
        return r.next()
    }

    /// Seed of sample j of prompt i, below 2^53 so JSON readers keep it exact.
    public func sampleSeed(prompt i: Int, sample j: Int) -> UInt64 { mix(mix(runSeed, UInt64(i) + 1), UInt64(j) + 1) >> 11 }

    /// The example tasks of prompt i: 6 seeds and 2 generated ones when the pool has them.
    public func examples(prompt i: Int, pool: [String]) -> [String] {
        var rng = SplitMix64(seed: mix(runSeed, UInt64(i) &+ 0x5EED))
        let fromPool = pool.count >= 2 ? 2 : 0
        var picked: [String] = []
        var seedIdx = Array(seeds.indices)
        for _ in 0..<min(8 - fromPool, seeds.count) {
            let k = Int(rng.next() % UInt64(seedIdx.count))
            picked.append(seeds[seedIdx.remove(at: k)])
        }
        var poolIdx = Array(pool.indices)
        for _ in 0..<fromPool {
            let k = Int(rng.next() % UInt64(poolIdx.count))
            picked.append(pool[poolIdx.remove(at: k)])
        }
        // Shuffle so generated examples are not always last.
        for a in stride(from: picked.count - 1, to: 0, by: -1) { picked.swapAt(a, Int(rng.next() % UInt64(a + 1))) }
        return picked
    }

    /// Generates prompts start..<prompts, writing kept samples in order; `existing` holds the
    /// instructions of prompts before `start` (from a resumed output).
    public func run(from start: Int, existing: [String], out: JSONLWriter, progress: Progress?) throws {
        let chat = try loaded.requireChat()
        pool = existing
        let teacher = teacherValue, settings = settingsValue
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: slots)
        var i = start
        while i < prompts {
            // A round: its prompts see only instructions from earlier rounds.
            let end = min(prompts, (i / round + 1) * round)
            let roundPool = pool
            var messages: [String] = []
            var requests: [GenerationRequest] = []
            for p in i..<end {
                let message = InstructionPrompt.build(examples: examples(prompt: p, pool: roundPool))
                messages.append(message)
                let ids = chat.promptIds(user: message, tokenizer: loaded.tokenizer) + loaded.tokenizer.encode(prefill, continuing: true)
                for j in 0..<samples {
                    var s = sampling
                    s.seed = sampleSeed(prompt: p, sample: j)
                    requests.append(GenerationRequest(prompt: ids, sampling: s))
                }
            }
            let results = try generator.generateUnlessInterrupted(requests)
            for (k, p) in (i..<end).enumerated() {
                for j in 0..<samples {
                    let result = results[k * samples + j]
                    let raw = prefill + result.text
                    let block = InstructionPrompt.extract(raw, closedByEnd: result.finishReason == .stop)
                    let cleaned = block.map(InstructionPrompt.clean) ?? Result<String, InstructionPrompt.Rejection>.failure(.noInstructionBlock)
                    switch cleaned {
                    case let .failure(reason): rejected[reason, default: 0] += 1
                    case let .success(instruction):
                        var o = JSONObject()
                        o["id"] = .string("p\(p)-s\(j)")
                        o["prompt_id"] = .string("p\(p)")
                        o["prompt"] = .string(messages[k])
                        o["raw"] = .string(raw)
                        o["instruction"] = .string(instruction)
                        o["teacher"] = teacher
                        o["sampling"] = settings
                        o["seed"] = .number(JSONNumber(Int(sampleSeed(prompt: p, sample: j))))
                        o["sample_index"] = .number(JSONNumber(j))
                        try out.write(o)
                        written += 1
                        pool.append(instruction)
                    }
                }
                // One flush (one gzip member) per prompt: a crash cuts between prompts.
                try out.flush()
            }
            i = end
            try Interrupts.check()
            progress?.update(count: i, position: i)
        }
    }

    func number(_ x: Double) -> JSONValue { JSONNumber.value(x) }

    /// The `teacher` field of every record: the model's name and SHA-256.
    var teacherValue: JSONValue {
        .object(JSONObject(uniqueKeysAndValues: [("model", .string(loaded.name)), ("sha256", .string(loaded.sha256))]))
    }

    /// The `sampling` field of every record.
    var settingsValue: JSONValue {
        .object(
            JSONObject(uniqueKeysAndValues: [
                ("temperature", number(sampling.temperature)), ("top_p", number(sampling.topP)), ("top_k", .number(JSONNumber(sampling.topK))),
                ("presence_penalty", number(sampling.presencePenalty)), ("frequency_penalty", number(sampling.frequencyPenalty)),
                ("max_tokens", .number(JSONNumber(sampling.maxTokens))),
            ]))
    }

    /// Whether `records` (an earlier output, in its order) are what this generator writes for
    /// their prompts, so a run can continue them: each record's prompt text is rebuilt from the
    /// seeds and the instructions of earlier rounds (which checks seeds, round and run seed), and
    /// its sample seed, teacher, sampling and prefill are compared. Returns the first record that
    /// differs (0-based) and how, or nil.
    public func continuationProblem(_ records: [JSONObject]) -> (record: Int, problem: String)? {
        let teacher = teacherValue, settings = settingsValue
        var pool: [String] = [], roundPool: [String] = [], roundStart = 0, last = -1
        for (n, o) in records.enumerated() {
            guard let id = try? o.string("prompt_id"), id.first == "p", let p = Int(id.dropFirst()) else {
                return (n, "no prompt_id of the form pN")
            }
            guard p >= last else { return (n, "prompt \(p) after prompt \(last): not in generation order") }
            guard p < prompts else { return (n, "prompt \(p) is beyond --prompts \(prompts)") }
            last = p
            if p >= roundStart + round {
                roundStart = p / round * round
                roundPool = pool
            }
            guard let j = (try? o.int("sample_index")), j >= 0, j < samples else {
                return (n, "sample_index missing or not below --samples \(samples)")
            }
            guard let instruction = try? o.string("instruction") else { return (n, "no instruction") }
            let checks: [(String, Bool)] = [
                (
                    "prompt text (seeds, --round or --seed differ)",
                    (try? o.string("prompt")) == InstructionPrompt.build(examples: examples(prompt: p, pool: roundPool))
                ),
                ("seed (--seed differs)", (try? o.int("seed")).map { UInt64($0) == sampleSeed(prompt: p, sample: j) } ?? false),
                ("teacher", o["teacher"] == teacher),
                ("sampling", o["sampling"] == settings),
                ("raw text's opening (--prefill differs)", (try? o.string("raw"))?.hasPrefix(prefill) ?? false),
            ]
            if let differing = checks.first(where: { !$0.1 }) { return (n, "its \(differing.0) is not this run's") }
            pool.append(instruction)
        }
        return nil
    }

    /// Seed tasks as the teacher sees them: the instruction, and on the next line its input when
    /// it has one (Alpaca `input`, or the first Self-Instruct instance's `input`).
    public static func readSeeds(_ reader: RecordReader) throws -> [String] {
        var out: [String] = []
        while let r = try reader.next() {
            do { out.append(try seedTask(r.object)) } catch { try reader.reject(r, error.description) }
        }
        return out
    }

    public static func seedTask(_ o: JSONObject) throws(FieldError) -> String {
        let instruction = try o.string("instruction")
        var input = try o.optionalString("input")
        if input == nil, case let .array(instances)? = o["instances"], case let .object(first)? = instances.first {
            input = try first.optionalString("input")
        }
        let trimmed = input?.trimmingWhitespaceAtEnds() ?? ""
        return trimmed.isEmpty ? instruction : instruction + "\n   Input: " + trimmed
    }
}
