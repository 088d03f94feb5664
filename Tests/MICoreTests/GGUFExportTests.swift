import Foundation
import MICore
import Testing

/// A model written as GGUF and read back: F32 gives the same numbers, Q8_0 close ones.
@Suite struct GGUFExportTests {
    @Test(arguments: GGUFWriter.Format.allCases, ["smollm", "qwen2", "llama2"])
    func exportedModelsReadBack(format: GGUFWriter.Format, kind: String) throws {
        let source = Fixture.directory.appendingPathComponent("tiny-hf/\(kind)").path
        let loaded = try LoadedModel(path: source)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("export-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFWriter.write(
            model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate, name: "tiny",
            format: format, to: path)
        let back = try LoadedModel(path: path)
        #expect(back.model.config.numKeyValueHeads == loaded.model.config.numKeyValueHeads)
        #expect(back.model.config.architecture == (kind == "qwen2" ? "qwen2" : "llama"))
        #expect(back.model.config.attentionBias == (kind == "qwen2"))
        #expect(back.chat == loaded.chat)
        #expect(back.tokenizer.sentencePiece == loaded.tokenizer.sentencePiece)
        for text in ["It's 2024; we're at 3.14159! café <|im_end|>", "  two  spaces\n\ttab 中文 😀</s>x"] {
            #expect(back.tokenizer.encode(text) == loaded.tokenizer.encode(text), "\(text)")
            #expect(back.tokenizer.encode(text, continuing: true) == loaded.tokenizer.encode(text, continuing: true), "\(text)")
        }
        let prompt = loaded.chat!.promptIds(user: "Name a colour.", tokenizer: loaded.tokenizer)
        let completion = loaded.chat!.completionIds("Blue.", tokenizer: loaded.tokenizer)
        let a = loaded.model.completionLogProbs([(prompt, completion)])[0]
        let b = back.model.completionLogProbs([(prompt, completion)])[0]
        // GGUF keeps eps and the rope base as f32 (tiny differences even for F32 weights); F16 and
        // Q8_0 also round the weights (steps of 2^-11 relative and 1/254 of a block maximum).
        let tolerance = format == .f32 ? 1e-5 : format == .f16 ? 1e-2 : 0.1
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= tolerance, "\(format): \(x) vs \(y)") }
        if format == .f32 {
            #expect(loaded.model.parameters.buffer.array == back.model.parameters.buffer.array)
        }
    }

    @Test func llama3RopeScalingIsRefused() throws {
        let loaded = try LoadedModel(path: Fixture.directory.appendingPathComponent("tiny-hf/llama3").path)
        #expect(throws: (any Error).self) {
            try GGUFWriter.write(
                model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: nil, name: "x", format: .f32,
                to: FileManager.default.temporaryDirectory.appendingPathComponent("never.gguf").path)
        }
    }

    /// llama.cpp reads ignore_merges only from Llama 3's pre-tokenizer names, so SmolLM's
    /// tokenizer with it has no GGUF form: refused by name, nothing written.
    @Test func ignoreMergesWithoutAGGUFNameIsRefused() throws {
        let loaded = try LoadedModel(path: Fixture.directory.appendingPathComponent("tiny-hf/smollm").path)
        let t = loaded.tokenizer
        let ignoring = try BPETokenizer(
            vocabulary: t.vocabulary, merges: t.mergeLines, specialIds: t.specialTokens.keys.map(Int.init), preTokenizer: t.preTokenizer,
            bos: t.bos, eos: t.eos, pad: t.pad, addBOS: t.addBOS, ignoreMerges: true)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("never-\(UUID().uuidString).gguf").path
        #expect {
            try GGUFWriter.write(model: loaded.model, tokenizer: ignoring, chatTemplate: nil, name: "x", format: .f32, to: path)
        } throws: { "\($0)".contains("ignore_merges and the smollm pre-tokenizer") }
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    /// A block whose attention output and MLP down projections are zero adds nothing to the
    /// residual stream, so the model computes what the model cut without that block computes.
    @Test func aCutModelIsTheModelWithoutTheDroppedBlocks() throws {
        let loaded = try LoadedModel(path: Fixture.directory.appendingPathComponent("tiny-hf/smollm").path)
        let P = loaded.model.parameters
        let cut = LlamaModel(parameters: P.keepingLayers([1]))
        #expect(cut.config.numHiddenLayers == 1)
        for suffix in ["input_layernorm.weight", "self_attn.k_proj.weight", "mlp.down_proj.weight"] {
            #expect(cut.parameters.values("model.layers.0." + suffix) == P.values("model.layers.1." + suffix))
        }
        #expect(cut.parameters.values("model.norm.weight") == P.values("model.norm.weight"))
        #expect(cut.parameters.values("model.embed_tokens.weight") == P.values("model.embed_tokens.weight"))

        let silenced = LlamaParameters(config: P.config)
        silenced.buffer.pointer.update(from: P.buffer.pointer, count: P.count)
        for name in ["model.layers.0.self_attn.o_proj.weight", "model.layers.0.mlp.down_proj.weight"] {
            let e = try #require(silenced.entry(name))
            silenced.buffer.pointer.advanced(by: e.offset).update(repeating: 0, count: e.count)
        }
        let prompt = loaded.chat!.promptIds(user: "Name a colour.", tokenizer: loaded.tokenizer)
        let completion = loaded.chat!.completionIds("Blue, or green.", tokenizer: loaded.tokenizer)
        let a = LlamaModel(parameters: silenced).completionLogProbs([(prompt, completion)])[0]
        let b = cut.completionLogProbs([(prompt, completion)])[0]
        let whole = loaded.model.completionLogProbs([(prompt, completion)])[0]
        #expect(a.count == completion.count)
        for (x, y) in zip(a, b) { #expect(abs(x - y) <= 1e-6, "\(x) vs \(y)") }
        #expect(zip(whole, b).contains { abs($0 - $1) > 1e-3 }, "dropping a block changes the model")

        // Blocks kept in another order land in that order, and the cut model writes and reads back.
        let swapped = LlamaModel(parameters: P.keepingLayers([1, 0]))
        #expect(swapped.parameters.values("model.layers.1.self_attn.q_proj.weight") == P.values("model.layers.0.self_attn.q_proj.weight"))
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cut-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try GGUFWriter.write(model: cut, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate, name: "cut", format: .f32, to: path)
        let back = try LoadedModel(path: path)
        #expect(back.model.config.numHiddenLayers == 1)
        #expect(back.model.parameters.buffer.array == cut.parameters.buffer.array)
    }

    @Test func layerListsParse() throws {
        #expect(try LlamaParameters.parseLayerList("0-2,5", layers: 30) == [0, 1, 2, 5])
        #expect(try LlamaParameters.parseLayerList("29,3", layers: 30) == [29, 3])
        #expect(try LlamaParameters.parseLayerList("7-7", layers: 30) == [7])
        for (text, error) in [
            ("2-1", LlamaParameters.LayerListError.malformed("2-1")), ("a", .malformed("a")), ("1,,2", .malformed("")),
            ("1-2-3", .malformed("1-2-3")), ("-1", .malformed("-1")), ("0-30", .outOfRange("0-30", layers: 30)),
            ("1,0-2", .repeated("1,0-2")),
        ] {
            #expect(throws: error, "\(text)") { try LlamaParameters.parseLayerList(text, layers: 30) }
        }
    }
}
