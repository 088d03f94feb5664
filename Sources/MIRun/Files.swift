#if canImport(Glibc)
import Glibc
#endif
import MICore
import MIStream

/// The few file-system operations the run needs, on plain POSIX calls.
enum Files {
    struct Info { let isDirectory: Bool; let size: Int; let mtime: Int }

    static func info(_ path: String) -> Info? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Info(isDirectory: (st.st_mode & S_IFMT) == S_IFDIR, size: Int(st.st_size),
                    mtime: Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec))
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file or a directory tree; a missing path is fine.
    static func remove(_ path: String) {
        guard let i = info(path) else { unlink(path); return }   // dangling symlinks too
        if i.isDirectory {
            for name in list(path) { remove(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func makeDirectories(_ path: String) throws(RunError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw RunError("cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The directory of the running executable, where the other tools are installed beside it.
    static func executableDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        return directory(of: String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

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
               let mt = Int(m), let h = try? r.object.string("sha256") {
                known[p] = (s, mt, h)
            }
        }
    }

    func fingerprint(_ path: String) throws(RunError) -> String {
        guard let i = Files.info(path) else { throw RunError("\(path): no such file or directory") }
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
        do { h = path.contains(".jsonl") ? try Self.recordsHash(path) : try SHA256.file(path) } catch { throw RunError("\(path): \(error)") }
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
            try? w.write(JSONObject(uniqueKeysAndValues: [
                ("path", .string(p)), ("size", .number(JSONNumber(k.size))), ("mtime", .string(String(k.mtime))), ("sha256", .string(k.hash)),
            ]))
        }
        try? w.commit()
        dirty = false
    }
}

extension Files {
    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
}

public struct RunError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public var exitStatus: Int32
    public init(_ message: String, exitStatus: Int32 = 70) { description = message; self.exitStatus = exitStatus }
}
