import Foundation
import MICore
import Testing

/// Tiny checkpoints saved by transformers (Tests/Reference/make_tiny_hf_fixtures.py): sharded f32
/// with tied embeddings and a SmolLM tokenizer; bf16 with an lm_head, Llama 3 tokenizer and
/// rope_scaling; Qwen2 (q/k/v biases, Qwen2's pre-tokenizer); Llama 2 / TinyLlama style
/// (SentencePiece BPE, [INST] template), as a directory and as llama.cpp's GGUF of the same model.
/// All are random models, so agreement means every weight landed in its place.
@Suite struct HuggingFaceDirectoryTests {
    static let kinds = ["smollm", "llama3", "qwen2", "llama2", "llama2.gguf"]

    func directory(_ kind: String) -> String { Fixture.directory.appendingPathComponent("tiny-hf/\(kind)").path }

    @Test(arguments: kinds)
    func tokensLogProbsAndGreedyMatchTransformers(kind: String) throws {
        let gguf = kind.hasSuffix(".gguf"), dir = directory(gguf ? String(kind.dropLast(5)) : kind)
        let loaded = try LoadedModel(path: gguf ? dir + "/tiny-llama2.gguf" : dir)
        let expected =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/expected.json"))) as! [String: Any]
        for t in expected["tokens"] as! [[String: Any]] {
            #expect(loaded.tokenizer.encode(t["text"] as! String) == (t["ids"] as! [Int]).map(Int32.init), "\(t["text"]!)")
        }
        let chat = try #require(loaded.chat)
        for c in expected["logprobs"] as! [[String: Any]] {
            #expect(chat.prompt(user: c["user"] as! String) == c["prompt"] as! String)
            let p = (c["prompt_ids"] as! [Int]).map(Int32.init), q = (c["completion_ids"] as! [Int]).map(Int32.init)
            #expect(loaded.tokenizer.encode(c["prompt"] as! String) == p)
            // The completion's ids are those that follow the prompt's in the whole conversation.
            #expect(loaded.tokenizer.encode(c["completion"] as! String, continuing: true) == q)
            let got = loaded.model.completionLogProbs([(p, q)])[0]
            for (a, b) in zip(got, c["logprobs"] as! [Double]) { #expect(abs(a - b) < 1e-4, "\(a) vs \(b)") }
        }
        for g in expected["greedy"] as! [[String: Any]] {
            var s = SamplingParameters()
            s.temperature = 0
            s.maxTokens = 12
            let r = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 2)
                .generate([GenerationRequest(prompt: (g["prompt_ids"] as! [Int]).map(Int32.init), sampling: s)])
            #expect(r[0].tokens == (g["new_ids"] as! [Int]).map(Int32.init))
        }
    }

    @Test func configVariantsAreRead() throws {
        let smol = try LoadedModel(path: directory("smollm")).model.config
        #expect(smol.tieWordEmbeddings && smol.numKeyValueHeads == 2 && smol.ropeScaling == nil)
        let l3 = try LoadedModel(path: directory("llama3")).model.config
        #expect(!l3.tieWordEmbeddings && l3.ropeTheta == 500000)
        #expect(l3.ropeScaling == .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 64))
        let qwen = try LoadedModel(path: directory("qwen2"))
        #expect(qwen.model.config.architecture == "qwen2" && qwen.model.config.attentionBias && qwen.model.config.ropeTheta == 1e6)
        #expect(qwen.tokenizer.preTokenizer == .qwen2)
        #expect(qwen.model.parameters.entries.filter { $0.name.hasSuffix("_proj.bias") }.count == 3 * 2)
    }
}

/// Malformed safetensors headers are rejected with a message, never trusted.
@Suite struct SafetensorsTests {
    func file(header: String, data: [UInt8]) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    func rejects(_ bytes: [UInt8], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("st-\(UUID().uuidString).safetensors").path
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SafetensorsFile(path: path)
            Issue.record("accepted (\(fragment))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    let eight = [UInt8](repeating: 0, count: 8)

    @Test func acceptsAWellFormedFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ok-\(UUID().uuidString).safetensors").path
        let floats: [Float] = [1, -2]
        let data = floats.withUnsafeBytes { Array($0) }
        _ = FileManager.default.createFile(
            atPath: path,
            contents: Data(file(header: #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: data)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let f = try SafetensorsFile(path: path)
        #expect(f.metadata["format"] == "pt")
        var out = [Float](repeating: 0, count: 2)
        out.withUnsafeMutableBufferPointer { f.read(f.tensors["a"]!, into: $0.baseAddress!) }
        #expect(out == floats)
    }

    @Test func rejectsMalformedHeaders() {
        rejects([1, 2, 3], "shorter than")
        rejects(withUnsafeBytes(of: UInt64(1 << 40).littleEndian) { Array($0) }, "over the 100 MB limit")
        rejects(withUnsafeBytes(of: UInt64(50).littleEndian) { Array($0) } + Array("{}".utf8), "past the end")
        rejects(file(header: "[1]", data: []), "not a JSON object")
        rejects(
            file(
                header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, data: eight),
            "duplicate key")
        rejects(file(header: #"{"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, data: eight), "unsupported dtype I64")
        rejects(file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight), "data_offsets span 8")
        rejects(
            file(
                header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: eight),
            "overlaps")
        rejects(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: eight), "gap before")
        rejects(file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: eight), "bytes after the last tensor")
        rejects(file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: eight), "past the end of the file")
        rejects(file(header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,16]}}"#, data: eight), "overflows")
        rejects(file(header: #"{"__metadata__":{"k":1}}"#, data: []), "not a string")
        rejects(file(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "missing")
    }
}
