import CZlib

/// Decompresses a gzip stream of one or more members (what `cat a.gz b.gz` makes) with zlib's
/// `inflate`, checking every member's CRC and length. After a member the only valid continuation
/// is the end of the input or another whole member; anything else is an error, never ignored.
public final class GzipSource: ByteSource {
    public var name: String { inner.name }
    private let inner: ByteSource
    private var stream = z_stream()
    private let input: UnsafeMutableRawBufferPointer
    private var innerBytes = 0
    private var atMemberBoundary = false
    private var finished = false
    public private(set) var completeMembers = 0

    public init(_ inner: ByteSource, bufferSize: Int = 1 << 18) throws(StreamError) {
        self.inner = inner
        input = .allocate(byteCount: bufferSize, alignment: 16)
        // 15 + 16: maximum window, gzip wrapper only (no raw deflate, no zlib wrapper).
        let rc = inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if rc != Z_OK { throw .corruptStream(source: inner.name, message: "zlib init failed (\(rc))", completeRecords: 0) }
    }

    deinit {
        inflateEnd(&stream)
        input.deallocate()
    }

    /// Offset in the compressed input of the next byte zlib will consume.
    private var compressedOffset: Int { innerBytes - Int(stream.avail_in) }

    private func fail(_ message: String) -> StreamError {
        .corruptStream(source: inner.name, message: "\(message) at compressed byte \(compressedOffset)", completeRecords: 0)
    }

    /// Moves unread input to the front and reads more after it. Returns false at end of input.
    private func refill() throws(StreamError) -> Bool {
        let pending = Int(stream.avail_in)
        let base = input.baseAddress!
        if pending > 0, let next = stream.next_in { base.copyMemory(from: next, byteCount: pending) }
        let n = try inner.read(into: UnsafeMutableRawBufferPointer(start: base + pending, count: input.count - pending))
        innerBytes += n
        stream.next_in = base.assumingMemoryBound(to: Bytef.self)
        stream.avail_in = uInt(pending + n)
        return n > 0
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        if finished || buffer.count == 0 { return 0 }
        stream.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(buffer.count)
        while true {
            let produced = buffer.count - Int(stream.avail_out)
            if produced > 0 { return produced }
            if atMemberBoundary {
                // Only EOF or the magic of a new member may follow a finished member.
                while stream.avail_in < 2 {
                    if try !refill() {
                        if stream.avail_in == 0 {
                            finished = true
                            return 0
                        }
                        throw fail("garbage after gzip member \(completeMembers) (1 stray byte)")
                    }
                }
                let next = stream.next_in!
                if next[0] != 0x1f || next[1] != 0x8b { throw fail("garbage after gzip member \(completeMembers)") }
                inflateReset(&stream)
                atMemberBoundary = false
            }
            if stream.avail_in == 0, try !refill() {
                throw fail("truncated gzip data in member \(completeMembers + 1) (unexpected end of file)")
            }
            let rc = inflate(&stream, Z_NO_FLUSH)
            switch rc {
            case Z_STREAM_END:
                completeMembers += 1
                atMemberBoundary = true
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_DATA_ERROR:
                let detail = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
                throw fail("corrupt gzip data in member \(completeMembers + 1): \(detail)")
            case Z_MEM_ERROR:
                throw fail("out of memory while decompressing")
            default:
                throw fail("zlib error \(rc)")
            }
        }
    }
}

/// Hands out bytes already read (the sniffed magic) before the rest of a source.
final class PrefixedSource: ByteSource {
    var name: String { inner.name }
    private var prefix: [UInt8]
    private let inner: ByteSource

    init(prefix: [UInt8], inner: ByteSource) {
        self.prefix = prefix
        self.inner = inner
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(StreamError) -> Int {
        if prefix.isEmpty { return try inner.read(into: buffer) }
        let n = min(prefix.count, buffer.count)
        prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
        prefix.removeFirst(n)
        return n
    }
}

extension ByteSource {
    /// Reads up to `count` bytes, fewer only at end of input.
    func readFully(_ count: Int) throws(StreamError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var have = 0
        while have < count {
            let n = try bytes.withUnsafeMutableBytes { raw in
                Result { () throws(StreamError) in try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[have...])) }
            }.get()
            if n == 0 { break }
            have += n
        }
        return Array(bytes[..<have])
    }
}

/// Opens an input for reading records: gzip is recognised by its magic bytes `1f 8b`, never by
/// its name alone; a `.gz` name without the magic (including an empty file) is an error.
public func openInput(_ path: String) throws(StreamError) -> ByteSource {
    let file = try FileDescriptorSource.open(path)
    let head = try file.readFully(2)
    let source = PrefixedSource(prefix: head, inner: file)
    if head == [0x1f, 0x8b] { return try GzipSource(source) }
    if path.hasSuffix(".gz") {
        if head.isEmpty { throw .corruptStream(source: file.name, message: "named .gz but not gzip data: empty file", completeRecords: 0) }
        let plain = head.first == UInt8(ascii: "{") || head.first == 0xEF
        let message =
            plain
            ? "named .gz but not gzip data: it holds plain JSON lines, probably redirected from a tool's stdout written without --gzip "
                + "(`mi-… > \(path)` by an older version, or another program); compress it with `gzip -c < \(path) > fixed.jsonl.gz`, "
                + "or rename it to a name without .gz"
            : "named .gz but not gzip data: no gzip magic bytes (1f 8b)"
        throw .corruptStream(source: file.name, message: message, completeRecords: 0)
    }
    return source
}
