import MIStream

/// A safetensors file: an 8-byte little-endian header length, a JSON header mapping tensor names
/// to dtype, shape and byte range, then the data. Every rule is checked before a byte is trusted:
/// header inside the file and at most 100 MB, UTF-8 JSON object without duplicate names, known
/// dtypes, shape × dtype size equal to the byte range, ranges in order, contiguous and covering
/// the data exactly. Pickle-based formats are never read.
public final class SafetensorsFile: @unchecked Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32"
        case f16 = "F16"
        case bf16 = "BF16"
        public var size: Int { self == .f32 ? 4 : 2 }
    }

    public struct Tensor: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]
        public let begin: Int
        public let end: Int
        public var elementCount: Int { shape.reduce(1, *) }
    }

    public let path: String
    public let tensors: [String: Tensor]
    public let metadata: [String: String]
    let file: MappedFile
    let dataStart: Int

    public static let maxHeaderBytes = 100_000_000

    public init(path: String) throws(SafetensorsError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .cannotOpen(path: path, reason: error.description) }
        self.file = file
        self.path = path
        func fail(_ m: String) -> SafetensorsError { .malformed(path: path, m) }
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw fail("file shorter than the 8-byte header length") }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maxHeaderBytes) else { throw fail("header length \(headerLength) over the 100 MB limit") }
        guard Int(headerLength) <= bytes.count - 8 else { throw fail("header length \(headerLength) runs past the end of the file") }
        dataStart = 8 + Int(headerLength)
        let header = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        let json: JSONValue
        do { json = try JSONParser(maxDepth: 16).parse(header) } catch { throw fail("header: \(error.message) at byte \(8 + error.offset)") }
        guard case let .object(root) = json else { throw fail("header is not a JSON object") }
        var tensors: [String: Tensor] = [:]
        var metadata: [String: String] = [:]
        for m in root.members {
            if m.key == "__metadata__" {
                guard case let .object(meta) = m.value else { throw fail("__metadata__ must be an object of strings") }
                for e in meta.members {
                    guard case let .string(v) = e.value else { throw fail("__metadata__[\(e.key)] is not a string") }
                    metadata[e.key] = v
                }
                continue
            }
            guard case let .object(t) = m.value else { throw fail("entry '\(m.key)' is not an object") }
            let dtypeName: String, shapeValues: [JSONValue], offsets: [JSONValue]
            do {
                dtypeName = try t.string("dtype")
                shapeValues = try t.array("shape")
                offsets = try t.array("data_offsets")
            } catch { throw fail("tensor '\(m.key)': \(error)") }
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("tensor '\(m.key)': unsupported dtype \(dtypeName)") }
            var shape: [Int] = []
            var count = 1
            for v in shapeValues {
                guard case let .number(n) = v, let d = n.int, d >= 0 else { throw fail("tensor '\(m.key)': invalid shape") }
                let (c, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw fail("tensor '\(m.key)': element count overflows") }
                count = c
                shape.append(d)
            }
            guard offsets.count == 2, case let .number(b) = offsets[0], case let .number(e) = offsets[1],
                let begin = b.int, let end = e.int, begin >= 0, end >= begin
            else {
                throw fail("tensor '\(m.key)': invalid data_offsets")
            }
            let (size, o) = count.multipliedReportingOverflow(by: dtype.size)
            guard !o, size == end - begin else {
                throw fail("tensor '\(m.key)': shape \(shape) × \(dtype.rawValue) is \(size) bytes but data_offsets span \(end - begin)")
            }
            tensors[m.key] = Tensor(name: m.key, dtype: dtype, shape: shape, begin: begin, end: end)
        }
        // The ranges must tile the data section exactly, in order.
        var cursor = 0
        for t in tensors.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard t.begin == cursor else {
                throw fail(t.begin < cursor ? "tensor '\(t.name)' overlaps another tensor" : "gap before tensor '\(t.name)'")
            }
            cursor = t.end
        }
        guard cursor == bytes.count - dataStart else {
            throw fail(
                cursor > bytes.count - dataStart
                    ? "tensor data runs past the end of the file (truncated?)" : "\(bytes.count - dataStart - cursor) bytes after the last tensor")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Converts a tensor to f32 into `dst` (which holds `elementCount` floats).
    public func read(_ t: Tensor, into dst: UnsafeMutablePointer<Float>) {
        let src = file.bytes.baseAddress! + dataStart + t.begin
        switch t.dtype {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: t.elementCount * 4)
        case .f16: Dequantize.run(.f16, src, dst, count: t.elementCount)
        case .bf16: Dequantize.run(.bf16, src, dst, count: t.elementCount)
        }
    }
}

public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case malformed(path: String, String)

    public var description: String {
        switch self {
        case let .cannotOpen(_, reason): return reason
        case let .malformed(path, m): return "\(path): malformed safetensors: \(m)"
        }
    }
}
