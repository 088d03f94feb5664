#if canImport(Glibc)
    import Glibc
#endif

/// Splits a byte stream on `\n` without decoding it. A `\r` before the `\n` is dropped, a UTF-8
/// byte-order mark is skipped at byte 0 only, and a line longer than the cap is reported as such
/// (never truncated). Memory is bounded by the cap, not by the size of the input.
public final class LineReader {
    public enum Line {
        /// The line's bytes, valid until the next call; `terminated` is false for a final line without `\n`.
        case text(UnsafeRawBufferPointer, terminated: Bool)
        /// A line over the cap; its bytes were skipped.
        case tooLong(length: Int)
    }

    public let source: ByteSource
    public let maxLineBytes: Int
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0
    private var scanned = 0
    private var eof = false
    /// Stream offset of `buffer[0]`.
    private var bufferOffset = 0
    /// 1-based number of the line last returned.
    public private(set) var lineNumber = 0
    /// Offset in the (decompressed) stream of the first byte of the line last returned.
    public private(set) var lineOffset = 0

    public init(source: ByteSource, maxLineBytes: Int = 64 << 20, chunkSize: Int = 1 << 20) {
        self.source = source
        self.maxLineBytes = maxLineBytes
        buffer = .allocate(byteCount: max(chunkSize, 4096), alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Total bytes consumed from the source so far.
    public var bytesConsumed: Int { bufferOffset + start }

    public func next() throws(StreamError) -> Line? {
        while true {
            if let nl = findNewline() {
                let lineStart = start
                start = nl + 1
                scanned = start
                if nl - lineStart > maxLineBytes {
                    lineNumber += 1
                    lineOffset = bufferOffset + lineStart
                    return .tooLong(length: nl - lineStart)
                }
                return emit(from: lineStart, to: nl, terminated: true)
            }
            if end - start > maxLineBytes { return try skipLongLine() }
            if eof {
                if start == end { return nil }
                let lineStart = start
                start = end
                scanned = end
                return emit(from: lineStart, to: end, terminated: false)
            }
            try readMore()
        }
    }

    private func findNewline() -> Int? {
        guard scanned < end else { return nil }
        let base = buffer.baseAddress!
        if let p = memchr(base + scanned, 0x0A, end - scanned) {
            return base.distance(to: p)
        }
        scanned = end
        return nil
    }

    private func emit(from lineStart: Int, to lineEnd: Int, terminated: Bool) -> Line {
        lineNumber += 1
        lineOffset = bufferOffset + lineStart
        var first = lineStart
        var last = lineEnd
        let bytes = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
        if lineOffset == 0, last - first >= 3, bytes[first] == 0xEF, bytes[first + 1] == 0xBB, bytes[first + 2] == 0xBF {
            first += 3
            lineOffset = 3
        }
        if last > first, bytes[last - 1] == 0x0D { last -= 1 }
        return .text(UnsafeRawBufferPointer(start: buffer.baseAddress! + first, count: last - first), terminated: terminated)
    }

    /// Compacts the buffer, grows it if a single line fills it, and reads one more chunk.
    private func readMore() throws(StreamError) {
        let base = buffer.baseAddress!
        if start > 0 {
            let pending = end - start
            if pending > 0 { base.copyMemory(from: base + start, byteCount: pending) }
            bufferOffset += start
            scanned -= start
            end = pending
            start = 0
        }
        if end == buffer.count {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: min(buffer.count * 2, maxLineBytes + buffer.count), alignment: 16)
            grown.baseAddress!.copyMemory(from: base, byteCount: end)
            buffer.deallocate()
            buffer = grown
        }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[end...]))
        if n == 0 { eof = true }
        end += n
    }

    /// Discards the rest of an over-long line, up to and including its `\n`.
    private func skipLongLine() throws(StreamError) -> Line {
        lineNumber += 1
        lineOffset = bufferOffset + start
        var length = end - start
        start = end
        scanned = end
        while true {
            if start == end {
                if eof { return .tooLong(length: length) }
                try readMore()
            }
            if let nl = findNewline() {
                length += nl - start
                start = nl + 1
                scanned = start
                return .tooLong(length: length)
            }
            length += end - start
            start = end
        }
    }
}
