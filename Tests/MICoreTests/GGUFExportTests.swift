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
}
