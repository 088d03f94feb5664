#if canImport(Glibc)
    import Glibc
#endif

/// Where output bytes go. Every write is checked: a full disk is an error, never a silent exit 0.
public protocol ByteSink: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws(StreamError)
}

/// Writes with write(2), looping over partial writes. EPIPE (the reader went away) becomes
/// `.brokenPipe`, which commands treat as a quiet stop.
public final class FileDescriptorSink: ByteSink {
    public let name: String
    let fd: Int32

    public init(fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(StreamError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n > 0 {
                done += n
                continue
            }
            if n < 0 && errno == EINTR { continue } // finish the record in flight
            if n < 0 && errno == EPIPE { throw .brokenPipe }
            throw .writeFailed(path: name, reason: n < 0 ? String(cString: strerror(errno)) : "no progress")
        }
    }

    public func sync() throws(StreamError) {
        if fsync(fd) != 0, errno != EINVAL, errno != EROFS {
            throw .writeFailed(path: name, reason: "fsync: " + String(cString: strerror(errno)))
        }
    }
}

extension ByteSink {
    /// Writes the first `count` bytes of an array.
    public func write(_ bytes: [UInt8], count: Int) throws(StreamError) {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(StreamError) in try write(UnsafeRawBufferPointer(rebasing: raw[..<count])) }
        }.get()
    }
}
