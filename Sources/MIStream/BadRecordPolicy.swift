/// What to do with a record that cannot be used. By default the first one stops the run (exit 65);
/// with a dead-letter path, up to `maxBadRecords` are written there, with their reason and raw
/// bytes, and the run carries on. A bad record is never turned into a default or null record.
public final class BadRecordPolicy {
    public let deadLetterPath: String?
    public let maxBadRecords: Int
    public private(set) var count = 0
    private var writer: JSONLWriter?
    /// Called for every diverted record, e.g. to print it on stderr.
    public var onDivert: ((String) -> Void)?

    /// Whether a bad record is counted and skipped rather than stopping the run.
    public let keepGoing: Bool

    /// - Parameter keepGoing: defaults to true when there is a dead-letter file; a validator
    ///   that only reports sets it without one.
    public init(deadLetterPath: String?, maxBadRecords: Int, keepGoing: Bool? = nil) {
        self.deadLetterPath = deadLetterPath
        self.maxBadRecords = maxBadRecords
        self.keepGoing = keepGoing ?? (deadLetterPath != nil)
    }

    public static func failFast() -> BadRecordPolicy { BadRecordPolicy(deadLetterPath: nil, maxBadRecords: 0) }

    public func divert(_ location: RecordLocation, _ problem: String, raw: UnsafeRawBufferPointer?) throws(StreamError) {
        let error = StreamError.badRecord(location, message: problem)
        guard keepGoing else { throw error }
        count += 1
        if count > maxBadRecords { throw .tooManyBadRecords(limit: maxBadRecords, last: error.description) }
        onDivert?(error.description)
        guard let path = deadLetterPath else { return }
        if writer == nil { writer = try JSONLWriter(path: path) }
        var letter = JSONObject()
        letter["source"] = .string(location.source)
        letter["line"] = .number(JSONNumber(location.line))
        letter["offset"] = .number(JSONNumber(location.offset))
        letter["error"] = .string(problem)
        if let raw {
            if UTF8Check.firstInvalidByte(raw) == nil {
                letter["raw"] = .string(String(decoding: raw, as: UTF8.self))
            } else {
                letter["raw_base64"] = .string(Base64.encode(raw))
            }
        }
        try writer!.write(letter)
    }

    /// Commits the dead-letter file (also when it stays empty, so its absence never means "unknown").
    public func commit() throws(StreamError) {
        if writer == nil, let path = deadLetterPath { writer = try JSONLWriter(path: path) }
        try writer?.commit()
    }

    public func leavePartial() { writer?.leavePartial() }
}

enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: UnsafeRawBufferPointer) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i])
            let b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0
            let b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(i + 1 < bytes.count ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
