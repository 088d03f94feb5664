import Foundation
import MICore

/// Writes small GGUF files byte by byte, so malformed variants can be made on purpose.
struct GGUFBuilder {
    var version: UInt32 = 3
    var metadata: [(String, UInt32, [UInt8])] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, data: [UInt8])] = []
    var alignment = 32
    /// Replaces the data offset written for tensor i (to make overlapping or misaligned files).
    var offsetOverrides: [Int: UInt64] = [:]

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func str(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

    mutating func add(_ key: String, string value: String) { metadata.append((key, 8, Self.str(value))) }
    mutating func add(_ key: String, u32 value: UInt32) { metadata.append((key, 4, Self.le(value))) }
    mutating func add(_ key: String, f32 value: Float) { metadata.append((key, 6, Self.le(value.bitPattern))) }
    mutating func add(_ key: String, strings: [String]) {
        metadata.append((key, 9, Self.le(UInt32(8)) + Self.le(UInt64(strings.count)) + strings.flatMap(Self.str)))
    }

    mutating func addTensor(_ name: String, dims: [UInt64], type: GGMLType, data: [UInt8]) {
        tensors.append((name, dims, type.rawValue, data))
    }

    /// The header (everything before the data section) and the data section.
    func build() -> [UInt8] {
        var out: [UInt8] = Array("GGUF".utf8) + Self.le(version)
        out += Self.le(UInt64(tensors.count)) + Self.le(UInt64(metadata.count))
        for (k, t, v) in metadata { out += Self.str(k) + Self.le(t) + v }
        var offset = 0
        var data: [UInt8] = []
        for (i, t) in tensors.enumerated() {
            out += Self.str(t.name) + Self.le(UInt32(t.dims.count))
            for d in t.dims { out += Self.le(d) }
            out += Self.le(t.type) + Self.le(offsetOverrides[i] ?? UInt64(offset))
            data += t.data
            let padded = (data.count + alignment - 1) / alignment * alignment
            data += [UInt8](repeating: 0, count: padded - data.count)
            offset = padded
        }
        while out.count % alignment != 0 { out.append(0) }
        return out + data
    }

    /// A tiny valid Llama-shaped file.
    static func tiny() -> GGUFBuilder {
        var b = GGUFBuilder()
        b.add("general.architecture", string: "llama")
        b.add("llama.block_count", u32: 1)
        b.add("llama.embedding_length", u32: 32)
        b.add("llama.feed_forward_length", u32: 64)
        b.add("llama.attention.head_count", u32: 4)
        b.add("llama.attention.head_count_kv", u32: 2)
        b.add("llama.context_length", u32: 128)
        b.add("llama.attention.layer_norm_rms_epsilon", f32: 1e-5)
        b.add("tokenizer.ggml.tokens", strings: ["a", "b", "c", "d"])
        b.add("llama.vocab_size", u32: 4)
        let weights = (0..<128).flatMap { le(Float(Float($0) * 0.25).bitPattern) }
        b.addTensor("token_embd.weight", dims: [32, 4], type: .f32, data: weights)
        b.addTensor("output_norm.weight", dims: [32], type: .f32, data: Array(weights[0..<128]))
        return b
    }
}

func withTempFile<T>(_ bytes: [UInt8], _ body: (String) throws -> T) rethrows -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("gguf-\(UUID().uuidString).gguf").path
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

func parseGGUF(_ bytes: [UInt8]) -> Result<GGUFFile, GGUFError> {
    withTempFile(bytes) { path in Result { () throws(GGUFError) in try GGUFFile(path: path) } }
}
