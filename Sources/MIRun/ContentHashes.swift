import MICore
import MIStream

/// Content fingerprints (SHA-256) of files and directory trees, remembered by size and
/// modification time in the run directory so a model is hashed once, not on every rerun.
final class ContentHashes {
    private var known: [String: (size: Int, mtime: Int, hash: String)] = [:]
    private let cachePath: String
    private var dirty = false

    init(cachePath: String) {
        self.cachePath = cachePath
        guard Files.exists(cachePath) else { return }
        let reader = RecordReader(paths: [cachePath])
        while let r = try? reader.next() {
            if let p = try? r.object.string("path"), let s = try? r.object.int("size"), let m = try? r.object.string("mtime"),
                let mt = Int(m), let h = try? r.object.string("sha256")
            {
                known[p] = (s, mt, h)
            }
        }
    }

    func fingerprint(_ path: String) throws(RunError) -> String {
        guard let i = Files.info(path) else { throw RunError("\(path): no such file or directory", exitStatus: ExitStatus.noInput.rawValue) }
        if i.isDirectory {
            var s = SHA256()
            for name in Files.list(path) where !name.hasPrefix(".") {
                s.update(Array((name + "\u{0}" + (try fingerprint(path + "/" + name)) + "\n").utf8))
            }
            return s.finish()
        }
        let absolute = path.hasPrefix("/") ? path : Files.currentDirectory() + "/" + path
        if let k = known[absolute], k.size == i.size, k.mtime == i.mtime { return k.hash }
        let h: String
        do { h = path.contains(".jsonl") ? try Self.recordsHash(path) : try SHA256.file(path) } catch let e as StreamError {
            throw RunError("\(path): \(e)", exitStatus: e.exitStatus.rawValue)
        } catch { throw RunError("\(path): \(error)", exitStatus: ExitStatus.dataError.rawValue) }
        known[absolute] = (i.size, i.mtime, h)
        dirty = true
        return h
    }

    /// JSONL files are fingerprinted by their uncompressed bytes: how a file was compressed (or
    /// where a resumed run's gzip members begin) does not change what it holds.
    static func recordsHash(_ path: String) throws -> String {
        let source = try openInput(path)
        var s = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try source.read(into: buffer)
            if n == 0 { break }
            s.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return s.finish()
    }

    func save() {
        guard dirty, let w = try? JSONLWriter(path: cachePath) else { return }
        for (p, k) in known.sorted(by: { $0.key < $1.key }) {
            try? w.write(
                JSONObject(uniqueKeysAndValues: [
                    ("path", .string(p)), ("size", .number(JSONNumber(k.size))), ("mtime", .string(String(k.mtime))), ("sha256", .string(k.hash)),
                ]))
        }
        try? w.commit()
        dirty = false
    }
}
