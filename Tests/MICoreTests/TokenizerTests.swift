import MICore
import Testing

@Suite(.tags(.model), .enabled(if: TestModel.available, "set MI_MODEL to the default GGUF (make test does)"))
struct TokenizerTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let text: String
        let ids: [Int32]
        var testDescription: String { text.debugDescription }
    }

    static let cases: [Case] = {
        guard let f = try? Fixture.json("tokens.json"), let cs = f["cases"] as? [[String: Any]] else { return [] }
        return cs.compactMap { c in
            guard let t = c["text"] as? String, let ids = c["ids"] as? [Int] else { return nil }
            return Case(text: t, ids: ids.map(Int32.init))
        }
    }()

    @Test func corpusIsNotEmpty() { #expect(Self.cases.count >= 30) }

    @Test(arguments: cases)
    func idsMatchHuggingFaceTokenizers(_ c: Case) throws {
        let tokenizer = try #require(TestModel.loaded?.tokenizer)
        #expect(tokenizer.encode(c.text) == c.ids)
        // Decoding inverts encoding (the corpus has no bytes missing from the vocabulary).
        #expect(tokenizer.decode(c.ids) == c.text)
    }

    @Test func specialTokensAndChatFormat() throws {
        let loaded = try #require(TestModel.loaded)
        let f = try Fixture.json("tokens.json")
        #expect(loaded.tokenizer.bos.map(Int.init) == f["bos_id"] as? Int)
        #expect(loaded.tokenizer.eos.map(Int.init) == f["eos_id"] as? Int)
        let chat = try #require(loaded.chat)
        #expect(
            chat.prompt(user: "X")
                == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nX<|im_end|>\n<|im_start|>assistant\n"
        )
        #expect(chat.completion("Y") == "Y<|im_end|>")
    }

    @Test func streamingDecoderHoldsPartialCharacters() throws {
        let tokenizer = try #require(TestModel.loaded?.tokenizer)
        let text = "naïve 中文 😀 👩‍👩‍👧 done"
        var decoder = StreamingDecoder()
        var out = ""
        for id in tokenizer.encode(text) {
            let piece = decoder.append(tokenizer.bytes(of: id))
            #expect(!piece.contains("\u{FFFD}"))
            out += piece
        }
        out += decoder.finish()
        #expect(out == text)
    }
}
