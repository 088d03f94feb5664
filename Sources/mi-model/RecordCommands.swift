import ArgumentParser
import MICLI
import MICore
import MIStream
import MITrainingCLI

/// Options of the record-in, record-out subcommands.
struct RecordIO: ParsableArguments {
    @Option(help: "A .gguf file or a Hugging Face directory (config.json, safetensors, tokenizer.json).")
    var model: String

    @Argument(help: "Input JSONL files ('-' is stdin).")
    var inputs: [String] = ["-"]

    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).")
    var out: String = "-"

    @Flag(help: "Treat text as a plain user message and apply the model's chat format.")
    var chat = false
    @OptionGroup var chatTemplate: ChatTemplateOption

    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var common: CommonOptions

    /// Reads every record, lets `transform` add fields, writes it; records keep their other fields.
    func run(program: String, batch: Int = 1, _ transform: (LoadedModel, [Record]) throws -> [JSONObject]) throws {
        common.apply(program: program)
        computeOptions.apply()
        try StageRunner.run {
            let loaded = try LoadedModel(path: model, chatTemplate: chatTemplate.value)
            let policy = badRecords.policy()
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            let writer = try JSONLWriter(path: out, flushThreshold: out == "-" ? 1 : 1 << 20)
            let progress = Progress(label: program)
            do {
                var pending: [Record] = []
                func drain() throws {
                    guard !pending.isEmpty else { return }
                    for o in try transform(loaded, pending) { try writer.write(o) }
                    pending.removeAll()
                    progress.update(count: writer.recordsWritten)
                }
                while let r = try reader.next() {
                    pending.append(r)
                    if pending.count >= batch { try drain() }
                    try Interrupts.check()
                }
                try drain()
                try writer.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.discard() }
                throw e
            }
            progress.finish("\(writer.recordsWritten) records")
        }
    }
}

/// A record field that a subcommand needs, with the record's location in the error.
struct FieldProblem: StageError {
    let location: RecordLocation
    let error: FieldError
    var exitStatus: ExitStatus { .dataError }
    var description: String { "\(location): \(error)" }
}

func field<T>(_ record: Record, _ get: (JSONObject) throws(FieldError) -> T) throws -> T {
    do { return try get(record.object) } catch { throw FieldProblem(location: record.location, error: error) }
}

func idsValue(_ ids: [Int32]) -> JSONValue { .array(ids.map { .number(JSONNumber(Int($0))) }) }

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "{\"text\": s} → the record plus \"ids\". Special tokens written in the text map to their ids.")

    @OptionGroup var io: RecordIO

    func run() throws {
        try io.run(program: "mi-model tokenize") { loaded, records in
            try records.map { r in
                var text = try field(r) { o throws(FieldError) in try o.string("text") }
                if io.chat { text = try loaded.requireChat().prompt(user: text) }
                var o = r.object
                o["ids"] = idsValue(loaded.tokenizer.encode(text))
                return o
            }
        }
    }
}

struct LogprobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logprobs",
        abstract: "{\"prompt\": p, \"completion\": c} → the record plus \"ids\", \"logprobs\" and \"sum\" of the completion tokens.",
        discussion:
            "Prompt and completion are tokenized separately (the completion as the prompt's continuation: no SentencePiece dummy prefix) and concatenated. With --chat, the prompt is a user message and the completion a response, formatted by the model's chat template."
    )

    @Option(help: "Records scored together in one forward pass.")
    var batchSize = 8

    @Option(
        help: ArgumentHelp(
            "The record field that holds the completion.",
            discussion: "e.g. raw: a generated record's teacher output, as mi-dpo scores it with --chat.", valueName: "name"))
    var completionField = "completion"

    @OptionGroup var io: RecordIO

    func run() throws {
        let completionField = completionField
        try io.run(program: "mi-model logprobs", batch: batchSize) { loaded, records in
            var pairs: [(prompt: [Int32], completion: [Int32])] = []
            for r in records {
                var prompt = try field(r) { o throws(FieldError) in try o.string("prompt") }
                var completion = try field(r) { o throws(FieldError) in try o.string(completionField) }
                if io.chat {
                    let chat = try loaded.requireChat()
                    prompt = chat.prompt(user: prompt)
                    completion = chat.completion(completion)
                }
                let p = loaded.tokenizer.encode(prompt), c = loaded.tokenizer.encode(completion, continuing: true)
                if p.isEmpty {
                    throw FieldProblem(location: r.location, error: FieldError(field: "prompt", problem: "must produce at least one token"))
                }
                pairs.append((p, c))
            }
            let scores = loaded.model.completionLogProbs(pairs)
            return records.enumerated().map { i, r in
                var o = r.object
                o["ids"] = idsValue(pairs[i].completion)
                o["logprobs"] = .array(scores[i].map { JSONNumber($0).map(JSONValue.number) ?? .null })
                o["sum"] = JSONNumber(scores[i].reduce(0, +)).map(JSONValue.number) ?? .null
                return o
            }
        }
    }
}
