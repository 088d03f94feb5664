#if canImport(Glibc)
    import Glibc
#endif

/// Sorts records by a byte-string key with bounded memory (an external merge sort): records are
/// kept as their serialised bytes up to a budget, each full buffer is sorted and spilled to a
/// temporary file as a run, and the runs are merged. Equal keys keep their input order, so the
/// result is the same whatever the budget.
public final class RecordSorter {
    public typealias Key = [UInt8]

    let budget: Int
    let temporaryParent: String
    let key: (JSONObject) throws -> Key
    private var buffer: [(key: Key, bytes: [UInt8])] = []
    private var buffered = 0
    private var runs: [String] = []
    private var directory: String?
    public private(set) var records = 0
    /// Sorted runs written to disk so far (0: everything fitted in memory).
    public private(set) var spilledRuns = 0

    /// - Parameters:
    ///   - memoryBudget: bytes of buffered records before a run is spilled.
    ///   - temporaryDirectory: where a private directory for the runs is made (and removed).
    ///   - key: the sort key of a record (it is recomputed when runs are read back).
    public init(memoryBudget: Int, temporaryDirectory: String, key: @escaping (JSONObject) throws -> Key) {
        budget = max(memoryBudget, 1)
        temporaryParent = temporaryDirectory
        self.key = key
    }

    deinit { removeRuns() }

    public func add(_ record: JSONObject) throws {
        var bytes: [UInt8] = []
        JSONWriter.append(record, to: &bytes)
        let k = try key(record)
        buffered += bytes.count + k.count + 64
        buffer.append((k, bytes))
        records += 1
        if buffered >= budget { try spill() }
    }

    /// Calls `body` with every record in key order (ties: input order).
    public func forEachSorted(_ body: (JSONObject) throws -> Void) throws {
        defer { removeRuns() }
        sortBuffer()
        let parser = JSONParser()
        if runs.isEmpty {
            for item in buffer {
                guard case let .object(o) = try parser.parse(item.bytes) else { continue }
                try body(o)
            }
            buffer = []
            return
        }
        if !buffer.isEmpty { try spill() }
        // k-way merge; the run index breaks ties, and runs hold consecutive stretches of the input.
        let readers = runs.map { RecordReader(paths: [$0]) }
        var heads: [(key: Key, record: JSONObject)?] = []
        for r in readers { heads.append(try r.next().map { (try key($0.object), $0.object) }) }
        while true {
            var best = -1
            for (i, h) in heads.enumerated() {
                guard let h else { continue }
                if best < 0 || h.key.lexicographicallyPrecedes(heads[best]!.key) { best = i }
            }
            if best < 0 { break }
            try body(heads[best]!.record)
            heads[best] = try readers[best].next().map { (try key($0.object), $0.object) }
        }
    }

    private func sortBuffer() {
        // Stable: sort indices by (key, position).
        let order = buffer.indices.sorted { a, b in
            let ka = buffer[a].key, kb = buffer[b].key
            return ka == kb ? a < b : ka.lexicographicallyPrecedes(kb)
        }
        buffer = order.map { buffer[$0] }
    }

    private func spill() throws {
        if directory == nil {
            var template = Array((temporaryParent + "/mi-sort-XXXXXX").utf8CString)
            guard mkdtemp(&template) != nil else {
                throw StreamError.cannotCreate(path: temporaryParent + "/mi-sort-XXXXXX", reason: String(cString: strerror(errno)))
            }
            directory = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        sortBuffer()
        let path = directory! + "/run-\(runs.count).jsonl"
        runs.append(path) // before writing, so a failed spill is removed too
        let w = try JSONLWriter(path: path, gzip: false)
        for item in buffer { try item.bytes.withUnsafeBytes { try w.writeLine($0) } }
        try w.commit()
        spilledRuns += 1
        buffer = []
        buffered = 0
    }

    private func removeRuns() {
        for r in runs {
            unlink(r)
            unlink(r + ".partial")
        }
        runs = []
        if let d = directory { rmdir(d) }
        directory = nil
    }
}
