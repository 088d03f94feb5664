/// Where in an input a problem was found: the name the user gave, the 1-based line and the
/// byte offset in the decompressed stream.
public struct RecordLocation: Sendable, Equatable, CustomStringConvertible {
    public var source: String
    public var line: Int
    public var offset: Int

    public init(source: String, line: Int, offset: Int) {
        self.source = source
        self.line = line
        self.offset = offset
    }

    public var description: String { "\(source):\(line): byte \(offset)" }
}

/// Errors of the stream layer. Each maps to one sysexits code.
public enum StreamError: StageError, Equatable {
    /// An input file is missing or unreadable (66).
    case cannotOpen(path: String, reason: String)
    /// Container-level corruption that cannot be skipped: broken gzip framing, a read error (65).
    case corruptStream(source: String, message: String, completeRecords: Int)
    /// One record is bad; with `--bad-records` it can be diverted (65).
    case badRecord(RecordLocation, message: String)
    /// An output could not be created or renamed into place (73).
    case cannotCreate(path: String, reason: String)
    /// A write, flush or fsync failed: disk full, I/O error (74).
    case writeFailed(path: String, reason: String)
    /// A read failed with an OS error (74).
    case readFailed(source: String, reason: String)
    /// The reader of our stdout went away (`| head`). Not an error for the user.
    case brokenPipe
    /// SIGINT or SIGTERM arrived; outputs were left uncommitted (75).
    case interrupted(signal: Int32)
    /// Too many records were diverted to the dead-letter file (65).
    case tooManyBadRecords(limit: Int, last: String)
    /// Another process is writing the same output (75).
    case inUse(path: String, holder: Int32?)
    /// A resume with settings other than those the partial output was made with (78).
    case settingsDiffer(path: String, detail: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .cannotOpen: return .noInput
        case .corruptStream, .badRecord, .tooManyBadRecords: return .dataError
        case .cannotCreate: return .cantCreate
        case .writeFailed, .readFailed: return .ioError
        case .brokenPipe: return .success
        case .interrupted, .inUse: return .interrupted
        case .settingsDiffer: return .config
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "\(path): cannot open: \(reason)"
        case let .corruptStream(source, message, n):
            return "\(source): \(message) (after \(n) complete record\(n == 1 ? "" : "s"))"
        case let .badRecord(loc, message): return "\(loc): \(message)"
        case let .cannotCreate(path, reason): return "\(path): cannot create output: \(reason)"
        case let .writeFailed(path, reason): return "\(path): write failed: \(reason)"
        case let .readFailed(source, reason): return "\(source): read failed: \(reason)"
        case .brokenPipe: return "output pipe closed"
        case let .interrupted(sig): return "interrupted by signal \(sig); outputs left uncommitted"
        case let .tooManyBadRecords(limit, last): return "more than \(limit) bad records; last: \(last)"
        case let .inUse(path, holder):
            let who = holder.map { "another process (pid \($0))" } ?? "another process"
            return "\(path): \(who) is writing this output; wait for it to end or choose another output"
        case let .settingsDiffer(path, detail):
            return "\(path): cannot resume: \(detail); rerun with the same settings, or without --resume to start over"
        }
    }
}
