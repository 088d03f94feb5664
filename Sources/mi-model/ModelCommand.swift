import ArgumentParser
import MICLI
import MICore
import MIStream
import MITrainingCLI

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-model",
        abstract: "Inspect and run a model: GGUF file, Hugging Face directory or a checkpoint of this project.",
        subcommands: [InfoCommand.self, TokenizeCommand.self, LogprobsCommand.self, GenerateCommand.self, ExportCommand.self, RuntimeCommand.self])
}

/// Reports how this process runs its numerics (useful in bug reports and benchmarks).
struct RuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime",
        abstract: "Print the BLAS kernel in use and how it was chosen, and the products' precision, as JSON.")

    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-model")
        computeOptions.apply()
        try StageRunner.run {
            var o = JSONObject()
            o["openblas_core"] = .string(BLASRuntime.coreName)
            o["origin"] = .string(BLASRuntime.origin.rawValue)
            o["cpu_best_core"] = BLASRuntime.bestCoreForCPU.map { .string($0) } ?? .null
            o["compute"] = .string(ComputePrecision.processDefault.rawValue)
            o["bf16_native"] = .bool(BF16Products.native)
            o["bf16_kernel"] = .string(BF16Products.kernel)
            let out = try JSONLWriter(path: "-")
            try out.write(o)
            try out.commit()
        }
    }
}

/// Architecture, sizes, tokenizer and chat format of a model, as one JSON object on stdout.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Describe a model (architecture, sizes, tokenizer, chat format) as JSON.")

    @Option(help: "A .gguf file or a Hugging Face directory.")
    var model: String

    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-model")
        computeOptions.apply()
        try StageRunner.run {
            let summary: JSONObject
            if HuggingFaceDirectory.isDirectory(model) {
                summary = ModelSummary.describe(loaded: try LoadedModel(path: model, chatTemplate: chatTemplate.value))
            } else {
                // A GGUF file is described from its header, without reading the weights.
                summary = try ModelSummary.describe(gguf: try GGUFFile(path: model))
            }
            let out = try JSONLWriter(path: "-")
            try out.write(summary)
            try out.commit()
        }
    }
}

extension GGUFWriter.Format: ExpressibleByArgument {}

/// Writes a model (e.g. a trained teacher) as a GGUF file for llama.cpp-family tools.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a model as GGUF (F32, F16 or Q8_0 weights).")

    @Option(help: "A .gguf file, a Hugging Face directory or a checkpoint.")
    var model: String

    @Option(help: "Output .gguf file.")
    var out: String

    @Option(help: "Weight format: F32, F16 or Q8_0 (norms stay F32).")
    var format: GGUFWriter.Format = .q8_0

    @Option(
        help: ArgumentHelp(
            "Keep only these transformer blocks, in this order, e.g. 0-13,29 (default: all).",
            discussion: "Cuts a smaller model from this one: the embedding, final norm and head are kept. "
                + "A student weaker than its teacher, starting from the teacher's own representations."))
    var layers: String?

    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-model")
        computeOptions.apply()
        try StageRunner.run {
            let loaded = try LoadedModel(path: model, blockWeights: false, chatTemplate: chatTemplate.value)
            let name = model.split(separator: "/").last.map(String.init) ?? model
            var written = loaded.model
            if let layers {
                let kept = try LlamaParameters.parseLayerList(layers, layers: loaded.model.config.numHiddenLayers)
                written = LlamaModel(parameters: loaded.model.parameters.keepingLayers(kept))
                Log.info("kept \(kept.count) of \(loaded.model.config.numHiddenLayers) blocks")
            }
            try GGUFWriter.write(
                model: written, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
                name: name, format: format, to: out)
            Log.info("wrote \(out) (\(format.rawValue))")
        }
    }
}
