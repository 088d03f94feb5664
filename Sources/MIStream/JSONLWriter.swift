#if canImport(Glibc)
    import Glibc
#endif

/// Writes records, one JSON object per line, to stdout (`-`) or a file. `OutputFile` decides how:
/// a regular file is written as `<name>.partial` (locked against a second writer) and renamed into
/// place by `commit()` after flush and fsync, so a reader never sees a half-written output under
/// the final name; a device, FIFO or socket is written straight. A name ending in `.gz` is
/// gzip-compressed.
public final class JSONLWriter {
    public let path: String
    public let isGzip: Bool
    private let output: OutputFile
    private let file: FileDescriptorSink
    private let gzip: GzipSink?
    private var buffer: [UInt8] = []
    /// Buffered bytes that trigger a flush (and, for gzip, a member boundary).
    public var flushThreshold: Int
    public private(set) var recordsWritten = 0

    /// `--gzip`: records written to stdout are compressed.
    public nonisolated(unsafe) static var gzipStandardOutput = false

    /// Compress stdout when asked to, or when it is a regular file named *.gz (`mi-… > out.jsonl.gz`):
    /// the name says what the file should hold, and plain text under it would be refused by the
    /// next reader.
    static var stdoutWantsGzip: Bool {
        if gzipStandardOutput { return true }
        var st = stat()
        guard fstat(1, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        return OutputFile.linkTarget("/proc/self/fd/1")?.hasSuffix(".gz") == true
    }
    private var committed = false

    /// - Parameters:
    ///   - gzip: compress; defaults to whether the name ends in `.gz`.
    ///   - append: continue an existing `.partial` (resume) instead of truncating it.
    public init(path: String, gzip: Bool? = nil, level: Int32 = 1, append: Bool = false, flushThreshold: Int = 1 << 20) throws(StreamError) {
        self.path = path
        self.flushThreshold = flushThreshold
        isGzip = gzip ?? (OutputFile.standardDescriptor(path) == 1 ? Self.stdoutWantsGzip : path.hasSuffix(".gz"))
        output = try OutputFile(path: path, append: append)
        file = FileDescriptorSink(fd: output.descriptor, name: output.partialPath ?? (path == "-" ? "<stdout>" : path))
        self.gzip = isGzip ? try GzipSink(file, name: file.name, level: level) : nil
        buffer.reserveCapacity(flushThreshold + 4096)
    }

    public func write(_ object: JSONObject) throws(StreamError) {
        JSONWriter.append(object, to: &buffer)
        buffer.append(0x0A)
        recordsWritten += 1
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Writes one already-serialised record; `line` must not contain a newline.
    public func writeLine(_ line: UnsafeRawBufferPointer) throws(StreamError) {
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        recordsWritten += 1
        if buffer.count >= flushThreshold { try flush() }
    }

    /// Pushes every complete record to the file or pipe; for gzip, closes the current member.
    public func flush() throws(StreamError) {
        if !buffer.isEmpty {
            let sink: ByteSink = gzip ?? file
            try sink.write(buffer, count: buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }
        try gzip?.endMember()
    }

    /// Makes the output final: flush, fsync, rename `.partial` into place, fsync the directory.
    public func commit() throws(StreamError) {
        guard !committed else { return }
        try flush()
        try gzip?.endMember(force: true)
        committed = true
        try output.commit()
    }

    /// The complete records of an interrupted run's `path.partial` (none when there is none); a
    /// torn last gzip member or line is dropped, to be produced again.
    public static func partialRecords(of path: String) -> [JSONObject] {
        guard let partial = OutputFile.partialPath(for: path), access(partial, R_OK) == 0 else { return [] }
        let reader = RecordReader(paths: [partial])
        var records: [JSONObject] = []
        do { while let r = try reader.next() { records.append(r.object) } } catch {}
        return records
    }

    /// A writer for `path` whose `.partial` starts with `records` (the first records of an
    /// interrupted run's partial). Where they end at one of that run's flush points, their bytes are
    /// kept as they are and the writer appends, so the finished file is byte for byte an
    /// uninterrupted run's; otherwise they are written afresh.
    public static func resuming(path: String, with records: [JSONObject], flushThreshold: Int) throws(StreamError) -> JSONLWriter {
        let gzip = path.hasSuffix(".gz")
        if !records.isEmpty, let partial = OutputFile.partialPath(for: path),
            let length = PartialPrefix.length(of: partial, records: records.count, gzip: gzip)
        {
            let w = try JSONLWriter(path: path, append: true, flushThreshold: flushThreshold)
            try w.output.truncate(to: length)
            w.recordsWritten = records.count
            w.gzip?.continuesMembers()
            return w
        }
        let w = try JSONLWriter(path: path, flushThreshold: flushThreshold)
        for o in records { try w.write(o) }
        try w.flush()
        return w
    }

    /// Called when a run stops early: keeps the complete records in `.partial` for `--resume`.
    public func leavePartial() {
        try? flush()
    }

    /// Removes the uncommitted `.partial` (used when the input itself was bad).
    public func discard() {
        buffer.removeAll()
        if !committed { output.discard() }
    }
}
