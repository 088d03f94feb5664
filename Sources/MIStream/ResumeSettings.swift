#if canImport(Glibc)
    import Glibc
#endif

/// The settings that decide a stage's records (model and its SHA-256, inputs' content, sampling,
/// seed, method flags), kept beside the partial output as `NAME.partial.settings` (one JSON
/// object) while the output is unfinished. `--resume` compares them with its own and refuses (78)
/// at the first difference, so a resumed file never mixes two runs' settings. The file goes away
/// when the output is committed.
public struct ResumeSettings: Sendable, Equatable {
    public private(set) var entries: [(key: String, value: String)] = []

    public init() {}

    /// A value that cannot be checked (the content of a stream): never compared.
    public static let unchecked = "(a stream, not checked)"

    public mutating func add(_ key: String, _ value: String) { entries.append((key, value)) }
    public mutating func add(_ key: String, _ value: some Numeric & LosslessStringConvertible) { entries.append((key, String(value))) }

    public static func == (a: ResumeSettings, b: ResumeSettings) -> Bool {
        a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
    }

    /// Where the settings of `output`'s partial live (nil for an output written straight).
    public static func file(for output: String) -> String? {
        OutputFile.partialPath(for: output).map { $0 + ".settings" }
    }

    /// Records the settings of a run that starts `output` afresh (call once its writer exists).
    public func record(for output: String) throws(StreamError) {
        guard let path = Self.file(for: output) else { return }
        var o = JSONObject()
        for (k, v) in entries { o[k] = .string(v) }
        try OutputFile.write(Array((JSONWriter.string(.object(o)) + "\n").utf8), to: path)
    }

    /// Before a resume reads `output`'s partial: the recorded settings must equal these. No partial
    /// means nothing to compare (the run starts afresh).
    public func verify(for output: String) throws(StreamError) {
        guard let partial = OutputFile.partialPath(for: output), access(partial, F_OK) == 0, let path = Self.file(for: output) else { return }
        guard access(path, F_OK) == 0 else {
            Log.warning("\(partial) has no recorded settings (written by an older version?); resuming without checking them")
            return
        }
        let recorded: JSONObject
        do {
            let reader = RecordReader(paths: [path])
            guard let r = try reader.next() else { throw StreamError.cannotOpen(path: path, reason: "empty") }
            recorded = r.object
        } catch {
            throw .settingsDiffer(path: partial, detail: "its settings file \(path) cannot be read (\(error)); rerun without --resume to start over")
        }
        for (k, v) in entries {
            let was = (try? recorded.string(k)) ?? "(not recorded)"
            if was != v, was != Self.unchecked, v != Self.unchecked {
                throw .settingsDiffer(path: partial, detail: "made with \(k) = \(was), this run has \(k) = \(v)")
            }
        }
        let known = Set(entries.map(\.key))
        if let extra = recorded.keys.first(where: { !known.contains($0) }) {
            throw .settingsDiffer(path: partial, detail: "made with \(extra) = \((try? recorded.string(extra)) ?? "?"), which this run does not set")
        }
    }
}
