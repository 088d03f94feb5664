import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

struct DPOCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-dpo",
        abstract: "Train a model on preference pairs with the DPO loss; writes a checkpoint directory.",
        discussion: """
            Pair records: {"prompt": user message, "chosen": text, "rejected": text}. The prompt is \
            chat-formatted; chosen and rejected are scored as completions (text + end-of-turn). The \
            reference model is the starting model: its log-probabilities are computed once, before \
            training. Metrics per step: loss, reward margin, preference accuracy, rewards (and, with \
            --nll-weight, the chosen completions' NLL per token).
            """)

    @Option(help: "Starting (and reference) model: a .gguf file, a Hugging Face directory or a checkpoint.")
    var model: String
    @Option(help: "Preference pairs (JSONL or JSONL.gz).")
    var pairs: [String]
    @Option(help: "Checkpoint directory to write.")
    var out: String
    @Option(help: "DPO temperature β.")
    var beta = 0.1
    @Option(
        help:
            "Add this weight times the chosen completions' NLL per token to the loss (RPO; TRL's rpo_alpha): keeps the chosen completions likely while DPO widens the margin. 0: plain DPO."
    )
    var nllWeight = 0.0
    @Option(
        help: "Keep the pairs of this fraction of the prompts out of training and report, as the last metrics line, how the trained model ranks them."
    )
    var heldoutFraction = 0.0
    @OptionGroup var training: TrainingOptions
    @Option(help: "Write one JSON line of metrics per optimizer step here.")
    var metrics: String?
    @Flag(help: "Continue a run stopped after a checkpoint in --out (same settings and data).")
    var resume = false
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if !(beta > 0) { throw ValidationError("--beta must be > 0") }
        if !(nllWeight >= 0) { throw ValidationError("--nll-weight must be >= 0") }
        if !(0..<1).contains(heldoutFraction) { throw ValidationError("--heldout-fraction must be in [0, 1)") }
    }

    func run() throws {
        common.apply(program: "mi-dpo")
        computeOptions.apply()
        try StageRunner.run {
            let settings = try training.settings()
            // The reference log-probabilities always come from --model, also when resuming.
            let reference = try LoadedModel(path: model, blockWeights: false, chatTemplate: chatTemplate.value)
            let policy = badRecords.policy()
            let reader = RecordReader(paths: pairs, options: badRecords.readOptions, badRecords: policy)
            var data = try DPORun.readPairs(reader, model: reference, maxLength: settings.maxLength)
            try policy.commit()
            data.holdOut(fraction: heldoutFraction)
            if !data.heldout.isEmpty { Log.info("\(data.heldout.count) pairs held out") }
            if data.items.isEmpty { throw ValidationError("no pairs in \(pairs.joined(separator: ", "))") }
            if data.truncated > 0 { Log.warning("\(data.truncated) pairs cut to --max-length \(settings.maxLength) tokens") }
            Log.info("\(data.items.count) pairs, \(settings.totalSteps(examples: data.items.count)) optimizer steps; scoring the reference")
            DPORun(model: reference, settings: settings, beta: beta, out: out).computeReference(&data)
            let resuming = resume && HuggingFaceDirectory.isDirectory(out)
            let start = resuming ? try LoadedModel(path: out, blockWeights: false) : reference
            let run = DPORun(model: start, settings: settings, beta: beta, out: out)
            run.metricsPath = metrics
            run.nllWeight = nllWeight
            try run.run(data, resume: resuming)
        }
    }
}
