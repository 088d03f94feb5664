import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Writes a safetensors file (F32 or BF16) whose tensors come from float buffers; the file is
/// complete or absent (written as NAME.partial, then renamed).
public enum SafetensorsWriter {
    public struct Item {
        public let name: String
        public let shape: [Int]
        public let data: UnsafePointer<Float>
        public init(name: String, shape: [Int], data: UnsafePointer<Float>) {
            self.name = name
            self.shape = shape
            self.data = data
        }
        var count: Int { shape.reduce(1, *) }
    }

    public static func write(_ items: [Item], to path: String, dtype: SafetensorsFile.DType = .f32, metadata: [String: String] = [:])
        throws(StreamError)
    {
        precondition(dtype != .f16, "F16 output is not offered")
        var header = JSONObject()
        if !metadata.isEmpty {
            var meta = JSONObject()
            for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { meta[k] = .string(v) }
            header["__metadata__"] = .object(meta)
        }
        var offset = 0
        for item in items {
            let bytes = item.count * dtype.size
            var t = JSONObject()
            t["dtype"] = .string(dtype.rawValue)
            t["shape"] = .array(item.shape.map { .number(JSONNumber($0)) })
            t["data_offsets"] = .array([.number(JSONNumber(offset)), .number(JSONNumber(offset + bytes))])
            header[item.name] = .object(t)
            offset += bytes
        }
        var headerBytes: [UInt8] = []
        JSONWriter.append(header, to: &headerBytes)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) } // keep the data 8-byte aligned
        let file = try OutputFile(path: path)
        let sink = FileDescriptorSink(fd: file.descriptor, name: file.partialPath ?? path)
        var length = UInt64(headerBytes.count).littleEndian
        try withUnsafeBytes(of: &length) { raw in Result { () throws(StreamError) in try sink.write(raw) } }.get()
        try sink.write(headerBytes, count: headerBytes.count)
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for item in items {
            switch dtype {
            case .f32:
                try sink.write(UnsafeRawBufferPointer(start: item.data, count: item.count * 4))
            default:
                // Round to nearest even, as torch's float → bfloat16 conversion does.
                var i = 0
                while i < item.count {
                    let n = min(item.count - i, chunk.count / 2)
                    for k in 0..<n {
                        let bits = item.data[i + k].bitPattern
                        let rounded =
                            item.data[i + k].isNaN ? UInt16(0x7FC0) : UInt16(truncatingIfNeeded: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16)
                        chunk[2 * k] = UInt8(rounded & 0xFF)
                        chunk[2 * k + 1] = UInt8(rounded >> 8)
                    }
                    try sink.write(chunk, count: 2 * n)
                    i += n
                }
            }
        }
        try file.commit()
    }
}
