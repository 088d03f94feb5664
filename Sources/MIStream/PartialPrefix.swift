import CZlib

/// Where the first records of an interrupted output end in its bytes. A resume keeps those bytes
/// as they are (the gzip members an uninterrupted run wrote, flush for flush) and appends, so the
/// finished file equals an uninterrupted run's byte for byte, not only record for record.
enum PartialPrefix {
    /// The length in bytes of the first `records` records of `path`, when they end exactly where
    /// the writer flushed: the end of a gzip member (or of a line, for plain JSONL). Nil otherwise,
    /// or when the file cannot be read.
    static func length(of path: String, records: Int, gzip: Bool) -> Int? {
        if records == 0 { return 0 }
        guard let bytes = OutputFile.readAll(path) else { return nil }
        if !gzip {
            var lines = 0
            for (i, b) in bytes.enumerated() where b == 0x0A {
                lines += 1
                if lines == records { return i + 1 }
            }
            return nil
        }
        var offset = 0, lines = 0
        var out = [UInt8](repeating: 0, count: 1 << 16)
        while offset < bytes.count {
            var stream = z_stream()
            guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
            defer { inflateEnd(&stream) }
            var status: Int32 = Z_OK
            bytes.withUnsafeBufferPointer { input in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + offset)
                stream.avail_in = uInt(bytes.count - offset)
                out.withUnsafeMutableBufferPointer { o in
                    while status == Z_OK {
                        stream.next_out = o.baseAddress!
                        stream.avail_out = uInt(o.count)
                        status = inflate(&stream, Z_NO_FLUSH)
                        let produced = o.count - Int(stream.avail_out)
                        for i in 0..<produced where o[i] == 0x0A { lines += 1 }
                    }
                }
            }
            guard status == Z_STREAM_END else { return nil } // a torn member: not a flush point
            offset = bytes.count - Int(stream.avail_in)
            if lines == records { return offset }
            if lines > records { return nil }
        }
        return nil
    }
}
