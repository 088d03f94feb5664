import MIStream

/// Why shards cannot be merged: one line naming the file, the record and the problem (exit 65).
public struct MergeProblem: StageError {
    public let description: String
    public var exitStatus: ExitStatus { .dataError }
    public init(_ message: String) { description = message }
}

/// Puts the outputs of a sharded stage (`--shard K/N`: records by a hash of their id) back into
/// the order of the input every shard read, and checks them: each input record exactly once, from
/// the shard its id hashes to, with its input fields unchanged; the object fields the stage added
/// (its settings: `responder`, `response_sampling`, `probe`) the same in every shard.
public enum ShardMerge {
    /// Reads the input once, taking each record's counterpart from its shard; returns the count.
    public static func merge(input: [String], shards: [String], into writer: JSONLWriter) throws -> Int {
        let source = RecordReader(paths: input)
        let readers = shards.map { RecordReader(paths: [$0]) }
        var last = [String?](repeating: nil, count: shards.count)
        var settings: [String: (JSONValue, String)] = [:]
        var expected = Set<String>()
        var count = 0
        while let r = try source.next() {
            guard let id = try? r.object.string("id") else { throw MergeProblem("\(r.location): no \"id\" (sharded stages need one)") }
            expected.insert(id)
            let k = LocalInfluence.shard(of: id, count: shards.count)
            guard let s = try readers[k].next() else {
                throw MergeProblem("\(shards[k]): record \(id) (\(r.location)) is missing: the shard ends before it")
            }
            let got = (try? s.object.string("id")) ?? "(no id)"
            if got != id {
                if got == last[k] { throw MergeProblem("\(s.location): id \(got) appears twice") }
                throw MergeProblem("\(s.location): expected record \(id) (\(r.location)) next, found \(got)")
            }
            last[k] = id
            for m in r.object.members where s.object[m.key] != m.value {
                throw MergeProblem("\(s.location): record \(id) differs from the input in \"\(m.key)\" (a shard of another input?)")
            }
            // Object fields the stage added are its settings: the same in every shard.
            for m in s.object.members where r.object[m.key] == nil {
                let key = m.key, value = m.value
                guard case .object = value else { continue }
                if let (first, whereFirst) = settings[key] {
                    if first != value {
                        throw MergeProblem(
                            "\(s.location): \"\(key)\" is \(JSONWriter.string(value)), but \(JSONWriter.string(first)) in \(whereFirst): shards made with different settings"
                        )
                    }
                } else {
                    settings[key] = (value, s.location.description)
                }
            }
            try writer.write(s.object)
            count += 1
        }
        for reader in readers {
            guard let extra = try reader.next() else { continue }
            let id = (try? extra.object.string("id")) ?? "(no id)"
            throw MergeProblem(
                expected.contains(id)
                    ? "\(extra.location): id \(id) appears twice" : "\(extra.location): id \(id) is not in the input (a foreign record)")
        }
        return count
    }
}
