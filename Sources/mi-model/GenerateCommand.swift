import ArgumentParser
import MICLI
import MICore
import MIStream

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "{\"prompt\": p} → the record plus \"completion\", \"ids\" and \"finish_reason\".",
        discussion: """
            The prompt is raw text (already chat-formatted) unless --chat is given. A record's own \
            "seed" field (an integer) overrides the seed derived from --seed and its position, so \
            a record gives the same completion wherever it appears. Generation stops at the model's \
            end-of-sequence and end-of-turn tokens, a --stop string, or --max-tokens \
            (finish_reason "length").
            """)

    @Option(help: "Maximum new tokens per record.")
    var maxTokens = 256

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature = 0.0

    @Option(help: "Nucleus sampling mass.")
    var topP = 1.0

    @Option(help: "Keep only the k most likely tokens (0: all).")
    var topK = 0

    @Option(help: "Presence penalty (vLLM's meaning).")
    var presencePenalty = 0.0

    @Option(help: "Frequency penalty (vLLM's meaning).")
    var frequencyPenalty = 0.0

    @Option(help: "Run seed; each record's seed derives from it and the record's position.")
    var seed: UInt64 = 0

    @Option(help: "Stop string (repeatable).")
    var stop: [String] = []

    @Option(help: "Sequences decoded together.")
    var batchSize = 16

    @OptionGroup var io: RecordIO

    func validate() throws {
        if maxTokens < 1 { throw ValidationError("--max-tokens must be >= 1") }
        if temperature < 0 { throw ValidationError("--temperature must be >= 0") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1]") }
        if topK < 0 { throw ValidationError("--top-k must be >= 0") }
        if batchSize < 1 { throw ValidationError("--batch-size must be >= 1") }
    }

    func run() throws {
        var index: UInt64 = 0
        try io.run(program: "mi-model generate", batch: batchSize) { loaded, records in
            let generator = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: batchSize)
            let stops = loaded.stopTokens
            var requests: [GenerationRequest] = []
            for r in records {
                var prompt = try field(r) { o throws(FieldError) in try o.string("prompt") }
                if io.chat { prompt = try loaded.requireChat().prompt(user: prompt) }
                var p = SamplingParameters()
                p.temperature = temperature
                p.topP = topP
                p.topK = topK
                p.presencePenalty = presencePenalty
                p.frequencyPenalty = frequencyPenalty
                p.maxTokens = maxTokens
                p.stopTokens = stops
                p.stopStrings = stop
                if let own = r.object["seed"] {
                    guard case let .number(n) = own, let v = n.int, v >= 0 else {
                        throw FieldProblem(location: r.location, error: FieldError(field: "seed", problem: "expected a non-negative integer"))
                    }
                    p.seed = UInt64(v)
                } else {
                    var mix = SplitMix64(seed: seed ^ (index &* 0x9E37_79B9_7F4A_7C15))
                    p.seed = mix.next()
                }
                index += 1
                requests.append(GenerationRequest(prompt: loaded.tokenizer.encode(prompt), sampling: p))
            }
            let results = try generator.generateUnlessInterrupted(requests)
            return records.enumerated().map { i, r in
                var o = r.object
                o["completion"] = .string(results[i].text)
                o["ids"] = idsValue(results[i].tokens)
                o["finish_reason"] = .string(results[i].finishReason.rawValue)
                return o
            }
        }
    }
}
