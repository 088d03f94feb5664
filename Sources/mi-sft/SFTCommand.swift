import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

extension TruncatedResponses: ExpressibleByArgument {}

struct SFTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-sft",
        abstract: "Fine-tune a model on instruction/response records; writes a checkpoint directory.",
        discussion: """
            Each record's instruction (plus its Alpaca "input", if any) is chat-formatted as the \
            prompt and its response, followed by the end-of-turn marker (not after a response marked truncated), is the completion; the loss \
            is the mean negative log-likelihood over all completion tokens of a batch. The output \
            directory is a Hugging Face checkpoint that mi-model and transformers load.
            """)

    @Option(help: "Starting model: a .gguf file, a Hugging Face directory or a checkpoint.")
    var model: String
    @Option(help: "Training records (JSONL or JSONL.gz with instruction and response).")
    var data: [String]
    @Option(help: "Checkpoint directory to write.")
    var out: String
    @OptionGroup var training: TrainingOptions
    @Option(help: "A response cut by --max-tokens (\"truncated\": true): open (kept without the end-of-turn marker) or drop (left out, counted).")
    var truncated = TruncatedResponses.open
    @Option(help: "Write one JSON line of metrics per optimizer step here.")
    var metrics: String?
    @Flag(help: "Continue a run stopped after a checkpoint in --out (same settings and data).")
    var resume = false
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-sft")
        computeOptions.apply()
        try StageRunner.run {
            let settings = try training.settings()
            let start = resume && HuggingFaceDirectory.isDirectory(out) ? out : model
            let loaded = try LoadedModel(path: start, blockWeights: false, chatTemplate: chatTemplate.value)
            let policy = badRecords.policy()
            let reader = RecordReader(paths: data, options: badRecords.readOptions, badRecords: policy)
            let examples = try SFTRun.readExamples(
                reader, model: loaded, maxLength: settings.maxLength,
                truncatedResponses: truncated)
            try policy.commit()
            if examples.dropped > 0 { Log.info("\(examples.dropped) records with a truncated response left out (--truncated drop)") }
            if examples.items.isEmpty { throw ValidationError("no training examples in \(data.joined(separator: ", "))") }
            if examples.truncated > 0 { Log.warning("\(examples.truncated) examples cut to --max-length \(settings.maxLength) tokens") }
            Log.info("\(examples.items.count) examples, \(settings.totalSteps(examples: examples.items.count)) optimizer steps")
            let run = SFTRun(model: loaded, settings: settings, out: out)
            run.metricsPath = metrics
            try run.run(examples, resume: resume && start == out)
        }
    }
}
