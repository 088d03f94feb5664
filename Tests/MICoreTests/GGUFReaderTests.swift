import Foundation
import MICore
import Testing

@Suite struct GGUFReaderTests {
    func rejects(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        switch parseGGUF(bytes) {
        case .success: Issue.record("accepted a malformed file (\(fragment))", sourceLocation: sourceLocation)
        case .failure(let e): #expect(e.description.contains(fragment), "\(e)", sourceLocation: sourceLocation)
        }
    }

    @Test func readsMetadataTensorsAndData() throws {
        let file = try parseGGUF(GGUFBuilder.tiny().build()).get()
        #expect(file.version == 3)
        #expect(file.string("general.architecture") == "llama")
        #expect(file.metadata["tokenizer.ggml.tokens"]?.array?.count == 4)
        let t = try #require(file.tensor("token_embd.weight"))
        #expect(t.shape == [32, 4])
        let values = file.floats(t)
        #expect(values.count == 128)
        #expect(values[5] == 1.25)
        let config = try LlamaConfig(gguf: file)
        #expect(config.headDim == 8)
        #expect(config.numKeyValueHeads == 2)
        #expect(config.tieWordEmbeddings)
    }

    @Test func rejectsBadHeaders() {
        var bytes = GGUFBuilder.tiny().build()
        bytes[0] = UInt8(ascii: "X")
        rejects(bytes, "bad magic")
        var v = GGUFBuilder.tiny()
        v.version = 4
        rejects(v.build(), "unsupported GGUF version 4")
        rejects([], "truncated")
        rejects(Array("GGUF".utf8), "truncated")
    }

    @Test func rejectsAbsurdCountsWithoutAllocating() {
        // 2^60 tensors in a 40-byte file
        let bytes =
            Array("GGUF".utf8) + GGUFBuilder.le(UInt32(3)) + GGUFBuilder.le(UInt64(1) << 60) + GGUFBuilder.le(UInt64(0))
            + [UInt8](repeating: 0, count: 16)
        rejects(bytes, "tensor count")
        var s = GGUFBuilder()
        s.metadata.append(("k", 8, GGUFBuilder.le(UInt64(1) << 40)))
        rejects(s.build(), "string length")
        var a = GGUFBuilder()
        a.metadata.append(("k", 9, GGUFBuilder.le(UInt32(4)) + GGUFBuilder.le(UInt64(1) << 50)))
        rejects(a.build(), "array length")
    }

    @Test func rejectsBadMetadata() {
        var d = GGUFBuilder.tiny()
        d.add("general.architecture", string: "llama")
        rejects(d.build(), "duplicate metadata key")
        var t = GGUFBuilder()
        t.metadata.append(("k", 99, []))
        rejects(t.build(), "unknown metadata value type 99")
        var n = GGUFBuilder()
        n.metadata.append(("k", 9, GGUFBuilder.le(UInt32(9)) + GGUFBuilder.le(UInt64(1))))
        rejects(n.build(), "nested arrays")
        var al = GGUFBuilder.tiny()
        al.add("general.alignment", u32: 24)
        rejects(al.build(), "power of two")
        var u = GGUFBuilder()
        u.metadata.append(("k", 8, GGUFBuilder.le(UInt64(2)) + [0xC3, 0x28]))
        rejects(u.build(), "not valid UTF-8")
    }

    @Test func rejectsBadTensors() {
        var dup = GGUFBuilder.tiny()
        dup.addTensor("output_norm.weight", dims: [32], type: .f32, data: [UInt8](repeating: 0, count: 128))
        rejects(dup.build(), "duplicate tensor name")
        var dims = GGUFBuilder.tiny()
        dims.addTensor("x", dims: [1, 1, 1, 1, 1], type: .f32, data: [0, 0, 0, 0])
        rejects(dims.build(), "5 dimensions")
        var block = GGUFBuilder.tiny()
        block.addTensor("q", dims: [20], type: .q4_0, data: [UInt8](repeating: 0, count: 18))
        rejects(block.build(), "not a multiple of the Q4_0 block size")
        var type = GGUFBuilder.tiny()
        type.tensors.append(("t", [4], 77, [UInt8](repeating: 0, count: 16)))
        rejects(type.build(), "unsupported ggml type 77")
        var overflow = GGUFBuilder.tiny()
        overflow.tensors.append(("big", [UInt64(1) << 40, UInt64(1) << 40], GGMLType.f32.rawValue, []))
        rejects(overflow.build(), "overflows")
        // cut inside the data section
        let full = GGUFBuilder.tiny().build()
        rejects(Array(full[..<(full.count - 10)]), "past the end of the file")
    }

    @Test func rejectsOverlappingAndMisalignedTensors() throws {
        let file = try parseGGUF(GGUFBuilder.tiny().build()).get()
        #expect(file.tensor("output_norm.weight")?.offset == 512)
        var overlap = GGUFBuilder.tiny()
        overlap.offsetOverrides[1] = 256
        rejects(overlap.build(), "overlaps")
        var misaligned = GGUFBuilder.tiny()
        misaligned.offsetOverrides[1] = 516
        rejects(misaligned.build(), "not aligned")
    }

    /// Random corruptions of a valid file: the reader must return or throw, never crash or hang.
    @Test func fuzzedFilesNeverCrash() {
        let good = GGUFBuilder.tiny().build()
        var rng = SplitMix64(seed: 42)
        var accepted = 0
        for round in 0..<3000 {
            var bytes = good
            switch round % 3 {
            case 0:
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
            case 1:
                bytes = Array(bytes[..<Int(rng.next() % UInt64(bytes.count))])
            default:
                // overwrite a 64-bit field with a huge or random value
                let at = Int(rng.next() % UInt64(bytes.count - 8))
                let v: UInt64 = rng.next() % 2 == 0 ? UInt64.max - rng.next() % 16 : rng.next()
                bytes.replaceSubrange(at..<(at + 8), with: GGUFBuilder.le(v))
            }
            if case .success(let f) = parseGGUF(bytes) {
                accepted += 1
                for t in f.tensors { _ = f.floats(t) } // every accepted tensor is readable
            }
        }
        #expect(accepted < 3000)
    }
}
