#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A pull-based stream of bytes. `read` returns 0 only at the end of the stream.
public protocol ByteSource: AnyObject {
    /// The name used in error messages (a path, or `<stdin>`).
    var name: String { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int
}

/// Reads a file descriptor with read(2), retrying on EINTR unless a stop was requested.
public final class FileDescriptorSource: ByteSource {
    public let name: String
    let fd: Int32
    let ownsDescriptor: Bool
    /// Bytes handed out so far; used to report offsets inside compressed files.
    public private(set) var bytesRead = 0

    public init(fd: Int32, name: String, ownsDescriptor: Bool) {
        self.fd = fd
        self.name = name
        self.ownsDescriptor = ownsDescriptor
    }

    /// Opens `path` for reading, or stdin for `-`.
    public static func open(_ path: String) throws(StreamError) -> FileDescriptorSource {
        if path == "-" { return FileDescriptorSource(fd: 0, name: "<stdin>", ownsDescriptor: false) }
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        if fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
            Glibc.close(fd)
            throw .cannotOpen(path: path, reason: "is a directory")
        }
        return FileDescriptorSource(fd: fd, name: path, ownsDescriptor: true)
    }

    /// Size of a regular file, or nil for pipes and terminals (used for ETA).
    public var regularFileSize: Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int(st.st_size)
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 {
                bytesRead += n
                return n
            }
            if errno == EINTR {
                if Interrupts.requested { throw .interrupted(signal: Interrupts.signal) }
                continue
            }
            throw .readFailed(source: name, reason: String(cString: strerror(errno)))
        }
    }

    deinit { if ownsDescriptor { Glibc.close(fd) } }
}
