import MIStream

/// A GGUF (v2/v3) file: metadata, tensor table and memory-mapped tensor data.
///
/// Every size read from the file is checked against the bytes that remain before it is trusted,
/// so a malformed file is rejected with a `GGUFError` — never a crash, a hang, or an allocation
/// larger than the file could justify.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    let file: MappedFile
    let dataStart: Int
    private let tensorIndex: [String: Int]

    public static let maxStringBytes = 64 << 20
    public static let maxAlignment = 1 << 20

    public convenience init(path: String) throws(GGUFError) {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .cannotOpen(path: path, reason: error.description) }
        try self.init(file: file)
    }

    init(file: MappedFile) throws(GGUFError) {
        self.file = file
        path = file.path
        var r = ByteCursor(bytes: file.bytes, path: file.path)
        guard try r.u32() == 0x4655_4747 else { throw GGUFError.malformed(path: path, offset: 0, "not a GGUF file (bad magic)") }
        version = try r.u32()
        guard version == 2 || version == 3 else {
            throw GGUFError.malformed(path: path, offset: 4, "unsupported GGUF version \(version) (2 and 3 are supported)")
        }
        let tensorCount = try r.count(minBytesEach: 8 + 4 + 4 + 8, what: "tensor count")
        let kvCount = try r.count(minBytesEach: 8 + 4, what: "metadata count")

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<kvCount {
            let at = r.offset
            let key = try r.string()
            let type = try r.u32()
            let value = try r.value(type: type, depth: 0)
            if metadata[key] != nil { throw GGUFError.malformed(path: path, offset: at, "duplicate metadata key '\(key)'") }
            metadata[key] = value
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        var alignment = 32
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v <= Self.maxAlignment, v & (v - 1) == 0 else {
                throw GGUFError.malformed(path: path, offset: 0, "general.alignment must be a power of two <= \(Self.maxAlignment)")
            }
            alignment = v
        }
        self.alignment = alignment

        var infos: [GGUFTensorInfo] = []
        var index: [String: Int] = [:]
        infos.reserveCapacity(tensorCount)
        for _ in 0..<tensorCount {
            let at = r.offset
            let info = try Self.tensorInfo(&r, alignment: alignment, path: path)
            let name = info.name
            if index[name] != nil { throw GGUFError.malformed(path: path, offset: at, "duplicate tensor name '\(name)'") }
            index[name] = infos.count
            infos.append(info)
        }
        let start = (r.offset + alignment - 1) / alignment * alignment
        dataStart = start
        let dataBytes = file.bytes.count - min(start, file.bytes.count)
        // Tensors must lie inside the data section and must not overlap.
        var end = 0
        for t in infos.sorted(by: { $0.offset < $1.offset }) {
            guard t.offset >= end else {
                throw GGUFError.malformed(path: path, offset: start + t.offset, "tensor '\(t.name)' overlaps the previous tensor")
            }
            let (e, o) = t.offset.addingReportingOverflow(t.byteCount)
            guard !o, e <= dataBytes else {
                throw GGUFError.malformed(path: path, offset: start + t.offset, "tensor '\(t.name)' extends past the end of the file (truncated?)")
            }
            end = e
        }
        tensors = infos
        tensorIndex = index
    }

    /// One tensor's name, dimensions, type and data offset, checked.
    static func tensorInfo(_ r: inout ByteCursor, alignment: Int, path: String) throws(GGUFError) -> GGUFTensorInfo {
        let at = r.offset
        let name = try r.string()
        let nDims = Int(try r.u32())
        guard (1...4).contains(nDims) else {
            throw GGUFError.malformed(path: path, offset: at, "tensor '\(name)': \(nDims) dimensions (1...4 allowed)")
        }
        var dims: [Int] = []
        var elements = 1
        for _ in 0..<nDims {
            let d = try r.u64()
            guard d > 0, d < UInt64(Int.max) else {
                throw GGUFError.malformed(path: path, offset: at, "tensor '\(name)': invalid dimension \(d)")
            }
            let (e, overflow) = elements.multipliedReportingOverflow(by: Int(d))
            guard !overflow else { throw GGUFError.malformed(path: path, offset: at, "tensor '\(name)': element count overflows") }
            elements = e
            dims.append(Int(d))
        }
        let rawType = try r.u32()
        guard let type = GGMLType(rawValue: rawType) else {
            throw GGUFError.malformed(path: path, offset: at, "tensor '\(name)': unsupported ggml type \(rawType)")
        }
        guard dims[0] % type.blockElements == 0, let size = type.byteCount(elements: elements) else {
            throw GGUFError.malformed(
                path: path, offset: at,
                "tensor '\(name)': first dimension \(dims[0]) is not a multiple of the \(type.name) block size \(type.blockElements)")
        }
        let offset = try r.u64()
        guard offset < UInt64(Int.max), Int(offset) % alignment == 0 else {
            throw GGUFError.malformed(path: path, offset: at, "tensor '\(name)': data offset \(offset) not aligned to \(alignment)")
        }
        return GGUFTensorInfo(name: name, type: type, shape: dims, elementCount: elements, offset: Int(offset), byteCount: size)
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The raw bytes of a tensor, in place in the memory map.
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawPointer {
        file.bytes.baseAddress! + dataStart + tensor.offset
    }

    /// Dequantises a tensor to f32 (row-major, the first GGUF dimension fastest).
    public func floats(_ tensor: GGUFTensorInfo) -> [Float] {
        [Float](unsafeUninitializedCapacity: tensor.elementCount) { buf, n in
            Dequantize.run(tensor.type, data(of: tensor), buf.baseAddress!, count: tensor.elementCount)
            n = tensor.elementCount
        }
    }

    public func string(_ key: String) -> String? { metadata[key]?.string }
    public func int(_ key: String) -> Int? { metadata[key]?.int }
    public func double(_ key: String) -> Double? { metadata[key]?.double }
}

public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// Dimensions as GGUF stores them: the first is the fastest-varying (a row's length).
    public let shape: [Int]
    public let elementCount: Int
    /// Offset from the start of the data section.
    public let offset: Int
    public let byteCount: Int
}

public enum GGUFValue: Sendable, Equatable {
    case uint(UInt64)
    case int(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var int: Int? {
        switch self {
        case let .uint(v): return v <= UInt64(Int.max) ? Int(v) : nil
        case let .int(v): return Int(v)
        default: return nil
        }
    }

    public var double: Double? {
        switch self {
        case let .float(v): return v
        case let .uint(v): return Double(v)
        case let .int(v): return Double(v)
        default: return nil
        }
    }

    public var string: String? { if case let .string(s) = self { return s } else { return nil } }
    public var array: [GGUFValue]? { if case let .array(a) = self { return a } else { return nil } }
}

public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case malformed(path: String, offset: Int, String)

    public var description: String {
        switch self {
        case let .cannotOpen(_, reason): return reason
        case let .malformed(path, offset, message): return "\(path): malformed GGUF at byte \(offset): \(message)"
        }
    }
}

/// Bounds-checked little-endian reads over the mapped file.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    let path: String
    var offset = 0

    var remaining: Int { bytes.count - offset }

    func truncated(_ what: String) -> GGUFError {
        .malformed(path: path, offset: offset, "file ends inside \(what) (truncated?)")
    }

    mutating func take<T: FixedWidthInteger>(_: T.Type, _ what: String) throws(GGUFError) -> T {
        let n = MemoryLayout<T>.size
        guard remaining >= n else { throw truncated(what) }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += n
        return v
    }

    mutating func u32() throws(GGUFError) -> UInt32 { try take(UInt32.self, "a 32-bit value") }
    mutating func u64() throws(GGUFError) -> UInt64 { try take(UInt64.self, "a 64-bit value") }

    /// A count of items that each take at least `minBytesEach` bytes: bounded by what is left.
    mutating func count(minBytesEach: Int, what: String) throws(GGUFError) -> Int {
        let at = offset
        let n = try u64()
        guard n <= UInt64(remaining / minBytesEach) else {
            throw GGUFError.malformed(path: path, offset: at, "\(what) \(n) is larger than the file can hold")
        }
        return Int(n)
    }

    mutating func string() throws(GGUFError) -> String {
        let at = offset
        let n = try u64()
        guard n <= UInt64(GGUFFile.maxStringBytes) else {
            throw GGUFError.malformed(path: path, offset: at, "string length \(n) over the 64 MiB limit")
        }
        guard Int(n) <= remaining else { throw truncated("a string") }
        let raw = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + Int(n))])
        guard UTF8Check.firstInvalidByte(raw) == nil else { throw GGUFError.malformed(path: path, offset: at, "string is not valid UTF-8") }
        offset += Int(n)
        return String(decoding: raw, as: UTF8.self)
    }

    /// Smallest encoding of each value type, for bounding array counts.
    static func minBytes(_ type: UInt32) -> Int? {
        switch type {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12, 8: return 8
        case 9: return 12
        default: return nil
        }
    }

    mutating func value(type: UInt32, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case 0: return .uint(UInt64(try take(UInt8.self, "a value")))
        case 1: return .int(Int64(try take(Int8.self, "a value")))
        case 2: return .uint(UInt64(try take(UInt16.self, "a value")))
        case 3: return .int(Int64(try take(Int16.self, "a value")))
        case 4: return .uint(UInt64(try take(UInt32.self, "a value")))
        case 5: return .int(Int64(try take(Int32.self, "a value")))
        case 6: return .float(Double(Float(bitPattern: try take(UInt32.self, "a value"))))
        case 7:
            let at = offset
            let b = try take(UInt8.self, "a value")
            guard b <= 1 else { throw GGUFError.malformed(path: path, offset: at, "boolean value \(b)") }
            return .bool(b == 1)
        case 8: return .string(try string())
        case 10: return .uint(try take(UInt64.self, "a value"))
        case 11: return .int(try take(Int64.self, "a value"))
        case 12: return .float(Double(bitPattern: try take(UInt64.self, "a value")))
        case 9:
            let at = offset
            let elementType = try u32()
            guard depth == 0, elementType != 9 else { throw GGUFError.malformed(path: path, offset: at, "nested arrays are not supported") }
            guard let size = Self.minBytes(elementType) else {
                throw GGUFError.malformed(path: path, offset: at, "array of unknown value type \(elementType)")
            }
            let n = try count(minBytesEach: size, what: "array length")
            var items: [GGUFValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n { items.append(try value(type: elementType, depth: depth + 1)) }
            return .array(items)
        default:
            throw GGUFError.malformed(path: path, offset: offset - 4, "unknown metadata value type \(type)")
        }
    }
}

extension GGUFError: StageError {
    public var exitStatus: ExitStatus {
        switch self {
        case .cannotOpen: return .noInput
        case .malformed: return .dataError
        }
    }
}
