import ArgumentParser
import MICLI
import MIStream

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-validate",
        abstract: "Check JSONL records (plain or gzip) against the schema of a record kind.",
        discussion: """
            Exits 0 only when every record is valid. Without --pass every invalid record is reported \
            on stderr; with --pass valid records are copied to the output so the command can sit \
            inside a pipe, and the first invalid record stops it (unless --bad-records diverts it).
            Kinds: \(RecordKind.all.joined(separator: ", ")).
            """)

    @Option(help: "Record kind to check against.")
    var schema: String

    @Argument(help: "Input files (.jsonl or .jsonl.gz; '-' is stdin).")
    var inputs: [String] = ["-"]

    @Flag(help: "Copy valid records to the output.")
    var pass = false

    @Option(name: .shortAndLong, help: "Output for --pass ('-' is stdout; a .gz name is compressed).")
    var out: String = "-"

    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if out != "-" && !pass { throw ValidationError("--out needs --pass") }
    }

    func run() throws {
        common.apply(program: "mi-validate")
        try StageRunner.run {
            let checker: JSONSchema
            do { checker = try RecordKind.schema(schema) } catch {
                throw ValidationError("\(error)")
            }
            try Validation(
                schema: checker, kind: schema, inputs: inputs, pass: pass, out: out, gzip: common.gzip,
                badRecords: badRecords, quiet: common.quiet
            ).run()
        }
    }
}

/// The validation loop, separate from flag parsing.
struct Validation {
    let schema: JSONSchema
    let kind: String
    let inputs: [String]
    let pass: Bool
    let out: String
    let gzip: Bool
    let badRecords: BadRecordOptions
    let quiet: Bool

    /// How many invalid records are printed before only counting.
    static let reportLimit = 20

    func run() throws {
        // Without --pass, report every invalid record; with it, stop at the first unless diverting.
        let policy =
            pass
            ? badRecords.policy()
            : BadRecordPolicy(deadLetterPath: badRecords.path, maxBadRecords: badRecords.path == nil ? .max : badRecords.max, keepGoing: true)
        var reported = 0
        policy.onDivert = { message in
            reported += 1
            if reported <= Self.reportLimit {
                Log.error(message)
            } else if reported == Self.reportLimit + 1 {
                Log.error("(further invalid records are counted, not printed)")
            }
        }
        let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
        let writer = pass ? try JSONLWriter(path: out, gzip: gzip ? true : nil) : nil
        let totalBytes = inputs.count == 1 ? (try? FileDescriptorSource.open(inputs[0]))?.regularFileSize : nil
        let progress = Progress(label: "mi-validate", total: totalBytes)
        var schemaInvalid = 0
        do {
            while let record = try reader.next() {
                if let problem = schema.firstViolation(.object(record.object)) {
                    schemaInvalid += 1
                    try reader.reject(record, "not a valid \(kind) record: \(problem)")
                } else {
                    try writer?.writeLine(record.raw)
                }
                try Interrupts.check()
                progress.update(count: reader.records, position: (totalBytes != nil ? sourceBytes(reader) : nil))
            }
            try writer?.commit()
            try policy.commit()
        } catch {
            if case .interrupted = error {
                writer?.leavePartial()
                policy.leavePartial()
            } else if error != .brokenPipe {
                writer?.discard()
            }
            throw error
        }
        let invalid = policy.count
        let valid = reader.records - schemaInvalid
        var summary = "\(valid + invalid) records: \(valid) valid, \(invalid) invalid \(kind)"
        if reader.blankLines > 0 { summary += ", \(reader.blankLines) blank lines skipped" }
        if let path = badRecords.path, invalid > 0 { summary += "; invalid records written to \(path)" }
        progress.finish(summary)
        if invalid > 0 && !(pass && badRecords.path != nil) { throw ExitCode(ExitStatus.dataError.rawValue) }
    }

    /// Compressed size is what we know of a .gz input, so progress is measured on decompressed
    /// bytes only for plain files.
    private func sourceBytes(_ reader: RecordReader) -> Int? {
        inputs[0].hasSuffix(".gz") ? nil : reader.bytesConsumed
    }
}
