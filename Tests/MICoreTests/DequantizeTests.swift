import MICore
import Testing

/// Dequantisation must be bit-exact against the `gguf` package's numpy implementation.
@Suite struct DequantizeTests {
    @Test func everyTypeMatchesTheReferenceExactly() throws {
        let fixture = try Fixture.json("dequant.json")
        let types = try #require(fixture["types"] as? [[String: Any]])
        var covered = Set<String>()
        for t in types {
            let name = try #require(t["type"] as? String)
            let id = try #require(t["ggml_type_id"] as? Int)
            let type = try #require(GGMLType(rawValue: UInt32(id)), "\(name) unsupported")
            #expect(type.name == name)
            #expect(type.blockBytes == t["block_bytes"] as? Int)
            #expect(type.blockElements == t["block_elems"] as? Int)
            let raw = hexBytes(try #require(t["hex"] as? String))
            let expected = try #require(t["bits"] as? [Int]).map { UInt32($0) }
            let count = raw.count / type.blockBytes * type.blockElements
            #expect(count == expected.count)
            var out = [Float](repeating: .nan, count: count)
            raw.withUnsafeBytes { src in
                out.withUnsafeMutableBufferPointer { Dequantize.run(type, src.baseAddress!, $0.baseAddress!, count: count) }
            }
            let mismatches = zip(out, expected).enumerated().filter { $0.element.0.bitPattern != $0.element.1 }
            #expect(
                mismatches.isEmpty,
                "\(name) \(t["tensor"] ?? "random"): \(mismatches.count) of \(count) differ, first at \(mismatches.first?.offset ?? -1)")
            covered.insert(name)
        }
        #expect(covered.isSuperset(of: GGMLType.allCases.map(\.name)))
    }
}
