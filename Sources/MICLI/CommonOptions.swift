import ArgumentParser
import MIStream

/// Flags every command shares.
public struct CommonOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "No progress or summary on stderr; errors only.")
    public var quiet = false

    @Flag(name: .shortAndLong, help: "Debug messages on stderr (also: MI_LOG_LEVEL=debug).")
    public var verbose = false

    @Flag(help: "Compress records written to stdout (they are anyway when stdout is a file named *.gz).")
    public var gzip = false

    public init() {}

    /// Applies the flags to the logger; the environment variable is the default.
    public func apply(program: String) {
        Log.program = program
        if quiet { Log.level = .error } else if verbose { Log.level = .debug }
        if gzip { JSONLWriter.gzipStandardOutput = true }
    }
}

/// `--bad-records` / `--max-bad-records`: divert unusable records instead of stopping.
public struct BadRecordOptions: ParsableArguments {
    @Option(
        name: .customLong("bad-records"),
        help: ArgumentHelp("Write unusable records (with reason and raw bytes) to this JSONL file and carry on.", valueName: "path"))
    public var path: String?

    @Option(name: .customLong("max-bad-records"), help: "Stop with an error after this many bad records (with --bad-records).")
    public var max: Int = 1000

    @Option(name: .customLong("max-line-bytes"), help: "A longer input line is a bad record.")
    public var maxLineBytes: Int = 64 << 20

    public init() {}

    public func validate() throws {
        if max < 0 { throw ValidationError("--max-bad-records must be >= 0") }
        if maxLineBytes < 16 { throw ValidationError("--max-line-bytes must be >= 16") }
    }

    public func policy() -> BadRecordPolicy {
        guard let path else { return .failFast() }
        return BadRecordPolicy(deadLetterPath: path, maxBadRecords: max)
    }

    public var readOptions: ReadOptions {
        var o = ReadOptions()
        o.maxLineBytes = maxLineBytes
        return o
    }
}

/// `--chat-template NAME|FILE`: the chat format for a model whose own template is missing or
/// unknown (or to replace it). Checkpoints written from the model carry the named template.
public struct ChatTemplateOption: ParsableArguments {
    @Option(
        name: .customLong("chat-template"),
        help: ArgumentHelp(
            "Chat format: chatml, llama2, llama3, zephyr, or a file with a Jinja chat template of one of these.",
            valueName: "name|file"))
    public var value: String?

    public init() {}
}

/// `--shard K/N`: K and N, or a validation error.
public func parseShard(_ text: String?) throws -> (index: Int, count: Int)? {
    guard let text else { return nil }
    let parts = text.split(separator: "/")
    guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, (0..<n).contains(k) else {
        throw ValidationError("--shard must be K/N with 0 <= K < N")
    }
    return (k, n)
}
