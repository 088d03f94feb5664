import MIStream

/// Drops records whose instruction is too close (ROUGE-L F above the threshold, the paper's
/// filter) to an earlier kept record or to a reference record, and exact duplicates. Streams:
/// each record is decided and written as it arrives.
public final class Dedupe {
    public let index: NearDuplicateIndex
    /// For each index entry: where it came from ("against" or a kept record's id).
    private var origins: [String] = []
    public private(set) var kept = 0
    public private(set) var dropped = 0
    public private(set) var againstCount = 0

    public init(threshold: Double) { index = NearDuplicateIndex(threshold: threshold) }

    /// Adds reference instructions (e.g. the seed tasks): candidates close to them are dropped.
    public func addAgainst(_ reader: RecordReader) throws {
        while let r = try reader.next() {
            let instruction: String
            do { instruction = try r.object.string("instruction") } catch {
                try reader.reject(r, error.description)
                continue
            }
            addAgainst(instruction: instruction, id: (try? r.object.string("id")) ?? "\(r.location.source):\(r.location.line)")
        }
    }

    public func addAgainst(instruction: String, id: String) {
        index.add(index.ids(RougeL.tokenize(instruction)))
        origins.append(id)
        againstCount += 1
    }

    public struct Decision {
        public let keep: Bool
        public let matchedID: String?
        public let score: Double
        public let reason: String?
    }

    public func decide(instruction: String, id: String) -> Decision {
        let tokens = index.ids(RougeL.tokenize(instruction))
        if let m = index.find(tokens) {
            dropped += 1
            return Decision(keep: false, matchedID: origins[m.entry], score: m.score, reason: m.exact ? "duplicate" : "rouge-l")
        }
        index.add(tokens)
        origins.append(id)
        kept += 1
        return Decision(keep: true, matchedID: nil, score: 0, reason: nil)
    }

    /// Runs over `reader`, writing kept records to `out` and dropped ones (with the id they
    /// matched and the score) to `rejects`.
    public func run(_ reader: RecordReader, out: JSONLWriter, rejects: JSONLWriter?, progress: Progress?) throws {
        while let r = try reader.next() {
            let instruction: String
            do { instruction = try r.object.string("instruction") } catch {
                try reader.reject(r, error.description)
                continue
            }
            let id = (try? r.object.string("id")) ?? "\(r.location.source):\(r.location.line)"
            let d = decide(instruction: instruction, id: id)
            if d.keep {
                try out.writeLine(r.raw)
                try out.flush()
            } else if let rejects {
                var o = r.object
                o["dedupe"] = .object(
                    JSONObject(uniqueKeysAndValues: [
                        ("reason", .string(d.reason ?? "")), ("matched_id", .string(d.matchedID ?? "")),
                        ("rouge_l", JSONNumber(d.score).map(JSONValue.number) ?? .null),
                    ]))
                try rejects.write(o)
            }
            try Interrupts.check()
            progress?.update(count: kept + dropped)
        }
    }
}
