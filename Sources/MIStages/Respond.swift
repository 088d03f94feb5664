import MICore
import MIStream

/// Adds a teacher's `response` to each instruction record (the paper samples with temperature 0.6
/// and top-p 0.9). Records are decoded many at a time and written in input order; a response cut
/// by the token limit is marked `"truncated": true`. Each record's seed derives from the run seed
/// and its position, so a run is reproducible whatever the batch size.
public final class Respond {
    public let loaded: LoadedModel
    public var sampling: SamplingParameters
    public var batchSize: Int
    public let runSeed: UInt64
    /// Answer only the records whose id hashes to shard `index` of `count` (`--shard K/N`); each
    /// keeps the seed of its position in the whole input, so merged shards equal the whole run.
    public var shard: (index: Int, count: Int)?
    public private(set) var done = 0
    public private(set) var truncated = 0

    public init(model: LoadedModel, sampling: SamplingParameters, batchSize: Int, seed: UInt64) {
        loaded = model
        self.sampling = sampling
        self.batchSize = batchSize
        runSeed = seed
        self.sampling.stopTokens.formUnion(model.stopTokens)
    }

    /// The seed of record `index`.
    public func seed(index: Int) -> UInt64 {
        var mix = SplitMix64(seed: runSeed ^ (UInt64(index) &* 0x9E37_79B9_7F4A_7C15))
        return mix.next()
    }

    /// Answers every record of `reader` in order. `resumed` holds the records of an interrupted run's
    /// output: that many leading records are skipped (their ids must match), the rest continue
    /// with the seeds they would have had.
    public func run(_ reader: RecordReader, out: JSONLWriter, progress: Progress?, resumed: [JSONObject] = []) throws {
        let chat = try loaded.requireChat()
        let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: batchSize)
        let responder = JSONValue.object(JSONObject(uniqueKeysAndValues: [("model", .string(loaded.name)), ("sha256", .string(loaded.sha256))]))
        let responseSampling = JSONValue.object(
            JSONObject(uniqueKeysAndValues: [
                ("temperature", JSONNumber.value(sampling.temperature)), ("top_p", JSONNumber.value(sampling.topP)),
                ("presence_penalty", JSONNumber.value(sampling.presencePenalty)), ("frequency_penalty", JSONNumber.value(sampling.frequencyPenalty)),
                ("max_tokens", .number(JSONNumber(sampling.maxTokens))), ("seed", .number(JSONNumber(Int(truncatingIfNeeded: runSeed)))),
            ]))
        var pending: [(JSONObject, GenerationRequest)] = []
        func flush() throws {
            guard !pending.isEmpty else { return }
            let results = try generator.generateUnlessInterrupted(pending.map(\.1))
            for (i, (record, _)) in pending.enumerated() {
                var o = record
                o["response"] = .string(results[i].text.trimmingWhitespaceAtEnds())
                o["truncated"] = .bool(results[i].finishReason == .length)
                o["responder"] = responder
                o["response_sampling"] = responseSampling
                if results[i].finishReason == .length { truncated += 1 }
                try out.write(o)
            }
            try out.flush()
            done += pending.count
            pending.removeAll()
            progress?.update(count: done)
        }
        var index = 0, kept = 0
        while let r = try reader.next() {
            let instruction: String, input: String?
            do {
                instruction = try r.object.string("instruction")
                input = try r.object.optionalString("input")
            } catch {
                try reader.reject(r, error.description)
                continue
            }
            let position = index
            index += 1
            if let shard {
                guard let id = try? r.object.string("id") else {
                    try reader.reject(r, "a record needs an \"id\" to be sharded (--shard)")
                    continue
                }
                if LocalInfluence.shard(of: id, count: shard.count) != shard.index { continue }
            }
            if kept < resumed.count {
                guard (try? resumed[kept].string("id")) == (try? r.object.string("id")),
                    (try? resumed[kept].string("instruction")) == instruction
                else {
                    throw StageFailure.resumeRefused("\(out.path).partial does not match the input at record \(position + 1)")
                }
                kept += 1
                done += 1
                continue
            }
            kept += 1
            let user = (input?.isEmpty ?? true) ? instruction : instruction + "\n\n" + input!
            var p = sampling
            p.seed = seed(index: position)
            pending.append((r.object, GenerationRequest(prompt: chat.promptIds(user: user, tokenizer: loaded.tokenizer), sampling: p)))
            if pending.count >= batchSize { try flush() }
            try Interrupts.check()
        }
        try flush()
    }
}
