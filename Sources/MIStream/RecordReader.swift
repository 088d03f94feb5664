/// One input record: a JSON object and where it came from. `raw` is the line as read (without
/// `\r\n` or BOM) and stays valid only until the next call to `RecordReader.next()`.
public struct Record {
    public var object: JSONObject
    public let location: RecordLocation
    public let raw: UnsafeRawBufferPointer
}

public struct ReadOptions: Sendable {
    /// A longer line is a bad record, never truncated.
    public var maxLineBytes: Int = 64 << 20
    public var maxDepth: Int = 128
    public init() {}
}

/// Reads JSONL records from several inputs in order, as one stream. Unparseable lines go to the
/// `BadRecordPolicy`, which by default stops the run at the first one; broken containers (gzip
/// truncation, CRC errors, trailing garbage) always stop the run.
public final class RecordReader {
    public let paths: [String]
    public let options: ReadOptions
    public let badRecords: BadRecordPolicy
    private var pathIndex = 0
    private var lines: LineReader?
    private var recordsInSource = 0
    private let parser: JSONParser
    public private(set) var records = 0
    public private(set) var blankLines = 0
    /// Bytes consumed from inputs already finished, for progress reports.
    private var finishedBytes = 0

    public init(paths: [String], options: ReadOptions = ReadOptions(), badRecords: BadRecordPolicy = .failFast()) {
        self.paths = paths.isEmpty ? ["-"] : paths
        self.options = options
        self.badRecords = badRecords
        parser = JSONParser(maxDepth: options.maxDepth)
    }

    /// Decompressed bytes read so far over all inputs.
    public var bytesConsumed: Int { finishedBytes + (lines?.bytesConsumed ?? 0) }

    public func next() throws(StreamError) -> Record? {
        while true {
            if lines == nil {
                guard pathIndex < paths.count else { return nil }
                lines = LineReader(source: try openInput(paths[pathIndex]), maxLineBytes: options.maxLineBytes)
                recordsInSource = 0
            }
            let reader = lines!
            let line: LineReader.Line?
            do {
                line = try reader.next()
            } catch let error {
                if case let .corruptStream(source, message, _) = error {
                    throw .corruptStream(source: source, message: message, completeRecords: recordsInSource)
                }
                throw error
            }
            guard let line else {
                finishedBytes += reader.bytesConsumed
                lines = nil
                pathIndex += 1
                continue
            }
            let location = RecordLocation(source: reader.source.name, line: reader.lineNumber, offset: reader.lineOffset)
            switch line {
            case let .tooLong(length):
                try badRecords.divert(location, "line of \(length) bytes exceeds the limit of \(options.maxLineBytes) bytes", raw: nil)
            case let .text(bytes, terminated):
                if isBlank(bytes) {
                    blankLines += 1
                    continue
                }
                let value: JSONValue
                do {
                    value = try parser.parse(bytes)
                } catch {
                    let at = RecordLocation(source: location.source, line: location.line, offset: location.offset + error.offset)
                    let message = terminated ? error.message : "truncated final record (no newline at end of input): \(error.message)"
                    try badRecords.divert(at, message, raw: bytes)
                    continue
                }
                guard case let .object(object) = value else {
                    try badRecords.divert(location, "record is a JSON \(value.typeName), expected an object", raw: bytes)
                    continue
                }
                records += 1
                recordsInSource += 1
                return Record(object: object, location: location, raw: bytes)
            }
        }
    }

    /// A stage found a record it cannot use (a field missing or of the wrong type).
    public func reject(_ record: Record, _ problem: String) throws(StreamError) {
        try badRecords.divert(record.location, problem, raw: record.raw)
    }

    private func isBlank(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.allSatisfy { $0 == 0x20 || $0 == 0x09 }
    }
}
