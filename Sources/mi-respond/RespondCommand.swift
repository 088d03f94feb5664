import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

struct RespondCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-respond",
        abstract: "Add the teacher's response to each instruction record.",
        discussion: """
            The instruction (with an Alpaca "input" appended) is sent as a user message in the model's \
            chat format. Adds "response", "truncated" (true when --max-tokens cut it) and "responder" \
            (model name and SHA-256); other fields pass through. Records keep their order.
            """)

    @Option(help: "Teacher model: a .gguf file, a Hugging Face directory or a checkpoint.")
    var teacher: String
    @Argument(help: "Instruction records ('-' is stdin).")
    var inputs: [String] = ["-"]
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).")
    var out = "-"
    @Option(help: "Sampling temperature (0: greedy).") var temperature = 0.6
    @Option(help: "Nucleus sampling mass.") var topP = 0.9
    @Option(help: "Subtracted from the logit of every token the response already holds (the paper samples with 1.0).") var presencePenalty = 1.0
    @Option(help: "Subtracted from a token's logit once per earlier occurrence in the response.") var frequencyPenalty = 0.0
    @Option(help: "Longest response in tokens; longer ones are cut and marked truncated.") var maxTokens = 512
    @Option(help: "Run seed.") var seed: UInt64 = 42
    @Option(help: "Records decoded together.") var batchSize = 16
    @Option(
        help:
            "K/N: answer only the records whose id hashes to shard K of N (each with its seed in the whole run); mi-merge puts shards back together.")
    var shard: String?
    @Flag(help: "Continue OUT.partial of an interrupted run with the same inputs and settings.") var resume = false
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func validate() throws {
        _ = try parseShard(shard)
        if maxTokens < 1 || batchSize < 1 { throw ValidationError("--max-tokens and --batch-size must be >= 1") }
        if resume && OutputFile.partialPath(for: out) == nil {
            throw ValidationError("--resume needs --out FILE (\(out) is written straight, with no partial file to continue)")
        }
        if temperature < 0 || !(topP > 0 && topP <= 1) { throw ValidationError("--temperature must be >= 0 and --top-p in (0, 1]") }
    }

    func run() throws {
        common.apply(program: "mi-respond")
        computeOptions.apply()
        try StageRunner.run(resumable: true) {
            let model = try LoadedModel(path: teacher, chatTemplate: chatTemplate.value)
            var p = SamplingParameters()
            p.temperature = temperature
            p.topP = topP
            p.maxTokens = maxTokens
            p.presencePenalty = presencePenalty
            p.frequencyPenalty = frequencyPenalty
            let respond = Respond(model: model, sampling: p, batchSize: batchSize, seed: seed)
            respond.shard = try parseShard(shard)
            let policy = badRecords.policy()
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            var settings = ResumeSettings()
            settings.add(model: "teacher", model)
            settings.add(inputs: "inputs", inputs)
            settings.add("temperature", temperature)
            settings.add("top_p", topP)
            settings.add("presence_penalty", presencePenalty)
            settings.add("frequency_penalty", frequencyPenalty)
            settings.add("max_tokens", maxTokens)
            settings.add("seed", seed)
            settings.add("shard", shard ?? "all")
            if resume { try settings.verify(for: out) }
            let resumed = resume ? JSONLWriter.partialRecords(of: out) : []
            let writer = try JSONLWriter.resuming(path: out, with: resumed, flushThreshold: out == "-" ? 1 : 1 << 20)
            try settings.record(for: out)
            let progress = Progress(label: "mi-respond")
            do {
                try respond.run(reader, out: writer, progress: progress, resumed: resumed)
                try writer.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.discard() }
                throw e
            }
            progress.finish("\(respond.done) responses (\(respond.truncated) cut at --max-tokens \(maxTokens))")
        }
    }
}
