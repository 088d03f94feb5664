#if canImport(Glibc)
    import Glibc
#endif

/// A read-only memory map of a whole file. Tensor data is used in place, never copied whole.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The mapped bytes, valid while the file lives; outside this module only `withBytes` reads them.
    let bytes: UnsafeRawBufferPointer

    public enum Failure: Error, CustomStringConvertible {
        case cannotOpen(String, String)
        public var description: String {
            switch self {
            case let .cannotOpen(p, why): return "\(p): cannot open: \(why)"
            }
        }
    }

    public init(path: String) throws(Failure) {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .cannotOpen(path, String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path, String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path, "not a regular file") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotOpen(path, "mmap: " + String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    /// Calls `body` with the file's bytes, mapped until it returns: the safe way to read a file
    /// that nothing else keeps (the optimizer may end a map's lifetime at its last use, before
    /// a parse of `bytes` is done).
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        defer { withExtendedLifetime(self) {} }
        return try body(bytes)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }
}
