import CZlib

/// Compresses into gzip members. The header is zlib's default (no name, mtime 0), so identical
/// input gives identical bytes. `endMember()` closes the current member: a file cut after any
/// member boundary is still a valid gzip stream, which is what makes resuming possible.
public final class GzipSink: ByteSink {
    private let inner: ByteSink
    private var stream = z_stream()
    private var output: [UInt8]
    private var memberOpen = false
    private var name: String

    public init(_ inner: ByteSink, name: String, level: Int32 = 1) throws(StreamError) {
        self.inner = inner
        self.name = name
        output = [UInt8](repeating: 0, count: 1 << 17)
        // 15 + 16: gzip wrapper; memLevel 8 is zlib's default.
        let rc = deflateInit2_(
            &stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw .cannotCreate(path: name, reason: "zlib deflateInit2 failed (\(rc))") }
    }

    deinit { deflateEnd(&stream) }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(StreamError) {
        guard bytes.count > 0 else { return }
        memberOpen = true
        stream.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress!.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(bytes.count)
        try run(flush: Z_NO_FLUSH)
    }

    private var membersWritten = 0

    /// Members already in the file before this sink (a resumed output): then an output that gets
    /// no new record needs no empty member to be valid gzip.
    public func continuesMembers() { membersWritten = max(membersWritten, 1) }

    /// Finishes the open member, if any, and starts a new one on the next write. With `force`,
    /// writes an empty member when none was written yet: an empty dataset is still valid gzip.
    public func endMember(force: Bool = false) throws(StreamError) {
        guard memberOpen || (force && membersWritten == 0) else { return }
        stream.next_in = nil
        stream.avail_in = 0
        try run(flush: Z_FINISH)
        deflateReset(&stream)
        memberOpen = false
        membersWritten += 1
    }

    private func run(flush: Int32) throws(StreamError) {
        let cap = output.count
        while true {
            let (rc, have) = output.withUnsafeMutableBytes { out -> (Int32, Int) in
                stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(cap)
                let rc = deflate(&stream, flush)
                return (rc, cap - Int(stream.avail_out))
            }
            if rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR {
                throw .writeFailed(path: name, reason: "zlib deflate failed (\(rc))")
            }
            if have > 0 {
                try inner.write(output, count: have)
            }
            if flush == Z_FINISH {
                if rc == Z_STREAM_END { return }
            } else if stream.avail_in == 0 && have < cap {
                return
            }
        }
    }
}
