import Foundation
import MIStream
import Testing

@testable import MICore

/// SentencePiece-style BPE (Llama 2, TinyLlama) against the `tokenizers` library: the Llama 2 fixture's
/// tokenizer.json (TinyLlama's layout), the same vocabulary in transformers' current Metaspace
/// layout, and llama.cpp's GGUF form (scores instead of merges). Tests/Reference/make_tiny_hf_fixtures.py
/// checked the first against `sentencepiece` itself.
@Suite struct SentencePieceTests {
    static let directory = Fixture.directory.appendingPathComponent("tiny-hf/llama2").path

    var cases: [[String: Any]] {
        get throws {
            let e = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.directory + "/expected.json")))
            return (e as! [String: Any])["tokens"] as! [[String: Any]]
        }
    }

    func ids(_ c: [String: Any], _ key: String) -> [Int32] { (c[key] as! [Int]).map(Int32.init) }

    func metaspace() throws -> BPETokenizer {
        let dir = Self.directory + "/metaspace"
        let tok = try HuggingFaceDirectory.readJSON(dir + "/tokenizer.json")
        return try TokenizerJSON.load(tok, config: try HuggingFaceDirectory.readJSON(dir + "/tokenizer_config.json"), path: dir).0
    }

    @Test func tokenizerJSONAndGGUFGiveTheLibrarysIdsAndText() throws {
        let json = try LoadedModel(path: Self.directory).tokenizer
        let gguf = try LoadedModel(path: Self.directory + "/tiny-llama2.gguf").tokenizer
        #expect(json.sentencePiece == SentencePieceSpelling(prefix: .always, byteFallback: true, unknown: 0))
        #expect(gguf.sentencePiece == json.sentencePiece)
        #expect(json.addBOS && gguf.addBOS && json.bos == 1 && gguf.eos == 2)
        let cases = try cases
        #expect(cases.count >= 20)
        for c in cases {
            let text = c["text"] as! String
            #expect(json.encode(text) == ids(c, "ids"), "\(text)")
            #expect(gguf.encode(text) == ids(c, "ids"), "gguf: \(text)")
            #expect([json.bos!] + json.encode(text) == ids(c, "with_bos"), "\(text)")
            #expect(json.decode(ids(c, "ids")) == c["decoded"] as! String, "\(text)")
        }
        // The GGUF has no merges: they follow from the scores, in the converter's order.
        #expect(json.mergeLines.count > 800)
        #expect(Set(gguf.mergeLines) == Set(json.mergeLines))
    }

    @Test func metaspaceLayoutGivesTheLibrarysIds() throws {
        let t = try metaspace()
        #expect(t.sentencePiece?.prefix == .first)
        var differing = 0
        for c in try cases {
            #expect(t.encode(c["text"] as! String) == ids(c, "metaspace_ids"), "\(c["text"]!)")
            if ids(c, "metaspace_ids") != ids(c, "ids") { differing += 1 }
        }
        // Leading spaces, "▁" in the text and text after a special token tell the layouts apart.
        #expect(differing >= 5)
    }

    @Test func aContinuationGetsNoDummyPrefix() throws {
        let t = try LoadedModel(path: Self.directory).tokenizer
        func spelled(_ ids: [Int32]) -> String { String(decoding: ids.flatMap { t.bytes(of: $0) }, as: UTF8.self) }
        #expect(spelled(t.encode("Blue.")) == " Blue.")
        #expect(spelled(t.encode("Blue.", continuing: true)) == "Blue.")
        #expect(t.encode(" Blue.", continuing: true) == t.encode("Blue."))
        // After a special token a new stretch starts, which the legacy layout prefixes again.
        #expect(spelled(t.encode("x</s>y", continuing: true)) == "x</s> y")
    }

    @Test(arguments: ["legacy", "metaspace"])
    func writtenTokenizerJSONReadsBackTheSame(layout: String) throws {
        let t = layout == "legacy" ? try LoadedModel(path: Self.directory).tokenizer : try metaspace()
        let back = try TokenizerJSON.load(TokenizerJSON.export(t), config: JSONObject(), path: "export").0
        #expect(back.sentencePiece == t.sentencePiece)
        for c in try cases {
            let text = c["text"] as! String
            #expect(back.encode(text) == t.encode(text), "\(text)")
            #expect(back.decode(ids(c, "ids")) == t.decode(ids(c, "ids")))
        }
    }

    @Test func unsupportedSpellingsAreRefusedByName() throws {
        var tok = try HuggingFaceDirectory.readJSON(Self.directory + "/tokenizer.json")
        tok["normalizer"] = .object(JSONObject(uniqueKeysAndValues: [("type", .string("NFKC"))]))
        #expect {
            _ = try TokenizerJSON.load(tok, config: JSONObject(), path: "t.json")
        } throws: { "\($0)".contains("normalizer") && "\($0)".contains("NFKC") }
        var meta = try HuggingFaceDirectory.readJSON(Self.directory + "/metaspace/tokenizer.json")
        meta["pre_tokenizer"] = .object(
            JSONObject(uniqueKeysAndValues: [("type", .string("Metaspace")), ("replacement", .string("_")), ("prepend_scheme", .string("first"))]))
        #expect {
            _ = try TokenizerJSON.load(meta, config: JSONObject(), path: "t.json")
        } throws: { "\($0)".contains("Metaspace") }
    }
}

/// BPE merge order against `tokenizers` (Tests/Fixtures/merge-order.json, written by
/// Tests/Reference/make_merge_order_fixture.py): random merge lists whose ranks do not follow the
/// order in which their tokens can form, on whole texts as one piece (Llama 2's spelling without
/// the dummy prefix). Merges go one at a time, the lowest rank first and the leftmost first among
/// equals, so a pair a merge forms can go before a second occurrence of the pair just merged.
@Suite struct MergeOrderTests {
    var cases: [[String: Any]] { get throws { try #require(try Fixture.json("merge-order.json")["cases"] as? [[String: Any]]) } }

    @Test func mergesOneAtATimeAsTheLibraryDoes() throws {
        let cases = try self.cases.filter { $0["spelling"] == nil }
        #expect(cases.count == 4)
        var longest = 0
        for c in cases {
            let tok = try BPETokenizer(
                vocabulary: try #require(c["vocabulary"] as? [String]), merges: try #require(c["merges"] as? [String]),
                specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil, pad: nil, addBOS: false,
                sentencePiece: SentencePieceSpelling(prefix: .never, byteFallback: false, unknown: nil))
            for t in try #require(c["texts"] as? [[String: Any]]) {
                let text = try #require(t["text"] as? String)
                let ids = try #require(t["ids"] as? [Int]).map(Int32.init)
                let got = tok.encode(text)
                // The first token that differs (the arrays run to thousands of tokens).
                let differs = got.indices.first { $0 >= ids.count || got[$0] != ids[$0] } ?? (got.count < ids.count ? got.count : nil)
                #expect(differs == nil, "\(text.count) characters: first difference at token \(differs ?? -1)")
                #expect(tok.decode(ids) == text)
                longest = max(longest, text.count)
            }
        }
        #expect(longest == 4000)
    }

    /// Byte-level cases with `ignore_merges` (Llama 3's tokenizer.json) or a pair listed twice
    /// among the merges (`tokenizers` keeps the later rank), read from the library's own
    /// tokenizer.json and built directly. Without the option, exactly the texts the script
    /// counted get other ids; the exported tokenizer.json keeps the option.
    @Test func ignoreMergesAndRepeatedMergesAsTheLibraryReadsThem() throws {
        let cases = try self.cases.filter { $0["spelling"] as? String == "byte-level" }
        #expect(cases.count == 4)
        for c in cases {
            let ignore = c["ignore_merges"] as? Bool ?? false
            let last = c["repeated_merges"] as? String == "last"
            let vocabulary = try #require(c["vocabulary"] as? [String]), merges = try #require(c["merges"] as? [String])
            guard case var .object(file) = try JSONParser().parse(try #require(c["tokenizer_json"] as? String)),
                case var .object(model)? = file["model"]
            else {
                Issue.record("tokenizer_json is not an object with a model")
                continue
            }
            // `tokenizers` writes each pair once; the file gets the repeated list back, so reading
            // it must keep the later rank as the library did.
            model["merges"] = .array(merges.map { .string($0) })
            file["model"] = .object(model)
            let fromJSON = try TokenizerJSON.load(file, config: JSONObject(), path: "tokenizer.json").0
            #expect(fromJSON.ignoreMerges == ignore)
            func built(ignoreMerges: Bool, repeated: BPETokenizer.RepeatedMerge) throws -> BPETokenizer {
                try BPETokenizer(
                    vocabulary: vocabulary, merges: merges, specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil, pad: nil,
                    addBOS: false, ignoreMerges: ignoreMerges, repeatedMerges: repeated)
            }
            let direct = try built(ignoreMerges: ignore, repeated: last ? .last : .first)
            let without = try built(ignoreMerges: false, repeated: .first)
            let exported = try TokenizerJSON.load(TokenizerJSON.export(fromJSON), config: JSONObject(), path: "export").0
            #expect(exported.ignoreMerges == ignore)
            #expect(last ? exported.mergeLines.count < merges.count : exported.mergeLines == merges)
            var changed = 0
            for t in try #require(c["texts"] as? [[String: Any]]) {
                let text = try #require(t["text"] as? String)
                let ids = try #require(t["ids"] as? [Int]).map(Int32.init)
                #expect(fromJSON.encode(text) == ids, "\(text)")
                #expect(direct.encode(text) == ids, "\(text)")
                #expect(exported.encode(text) == ids, "\(text)")
                if without.encode(text) != ids { changed += 1 }
            }
            #expect(changed == c["changed"] as? Int)
        }
    }

    /// The same cases as GGUF files: llama.cpp turns ignore_merges on for Llama 3's pre-tokenizer
    /// names ("llama-bpe"), not for "smaug-bpe" (the same regex, which splits these texts as
    /// GPT-2's does), and keeps the first rank of a pair listed twice. The writer names the
    /// pre-tokenizer so that the option survives, and refuses ignore_merges where no name has it.
    @Test func ggufFilesFollowLlamaCpp() throws {
        for c in try cases.filter({ $0["spelling"] as? String == "byte-level" }) {
            let ignore = c["ignore_merges"] as? Bool ?? false
            let vocabulary = try #require(c["vocabulary"] as? [String]), merges = try #require(c["merges"] as? [String])
            for pre in ignore ? ["llama-bpe", "smaug-bpe"] : ["gpt2"] {
                var b = GGUFBuilder()
                b.add("tokenizer.ggml.model", string: "gpt2")
                b.add("tokenizer.ggml.pre", string: pre)
                b.add("tokenizer.ggml.tokens", strings: vocabulary)
                b.add("tokenizer.ggml.merges", strings: merges)
                let tok = try BPETokenizer(gguf: try parseGGUF(b.build()).get())
                #expect(tok.ignoreMerges == (pre == "llama-bpe"))
                #expect(GGUFWriter.ggufPre(tok) == (pre == "gpt2" ? "gpt2" : pre))
                // The library's ids where llama.cpp reads the file as the library did, else exactly
                // the counted texts differ (no ignore_merges; the first rank of a repeated pair).
                let same = pre == "llama-bpe"
                var changed = 0
                for t in try #require(c["texts"] as? [[String: Any]]) {
                    if tok.encode(try #require(t["text"] as? String)) != (try #require(t["ids"] as? [Int])).map(Int32.init) { changed += 1 }
                }
                #expect(changed == (same ? 0 : c["changed"] as? Int), "\(pre)")
            }
        }
        let plain = try BPETokenizer(
            vocabulary: ["a", "b", "ab", "\u{120}"], merges: ["a b"], specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil, pad: nil, addBOS: false
        )
        let ignoring = try BPETokenizer(
            vocabulary: ["a", "b", "ab", "\u{120}"], merges: ["a b"], specialIds: [], preTokenizer: .gpt2, bos: nil, eos: nil, pad: nil,
            addBOS: false,
            ignoreMerges: true)
        #expect(GGUFWriter.ggufPre(plain) == "gpt2" && GGUFWriter.ggufPre(ignoring) == nil)
    }
}

/// The built-in chat formats against their Jinja templates rendered by transformers
/// (Tests/Fixtures/tiny-hf/chat-formats.json).
@Suite struct ChatFormatTests {
    @Test(arguments: ChatFormat.Style.allCases)
    func builtInFormatsMatchTheirRenderedTemplates(style: ChatFormat.Style) throws {
        let all = try JSONSerialization.jsonObject(
            with: Data(contentsOf: Fixture.directory.appendingPathComponent("tiny-hf/chat-formats.json")))
        let r = (all as! [String: Any])[style.rawValue] as! [String: Any]
        let s = { (k: String) in r[k] as! String }
        let format = ChatFormat(style: style, defaultSystem: nil, bos: s("bos"), eos: s("eos"))
        #expect(format.jinja == s("template"))
        #expect(ChatFormat(template: s("template"), bos: s("bos"), eos: s("eos")) == format)
        #expect(format.prompt(user: s("user")) == s("prompt"))
        #expect(format.prompt(user: s("user"), system: s("system")) == s("prompt_with_system"))
        // The conversation is prompt + completion (ChatML and Zephyr end the turn with a newline).
        let joined = format.prompt(user: s("user")) + format.completion(s("answer"))
        #expect(s("conversation") == joined || s("conversation") == joined + "\n")
    }

    @Test func namesFilesAndUnknownTemplates() throws {
        #expect(try ChatFormat.named("zephyr", fileText: nil, bos: "<s>", eos: "</s>").get().style == .zephyr)
        let llama2 = ChatFormat(style: .llama2, defaultSystem: nil)
        #expect(try ChatFormat.named("t.jinja", fileText: llama2.jinja, bos: "<s>", eos: "</s>").get() == llama2)
        #expect(ChatFormat.named("vicuna", fileText: nil, bos: "<s>", eos: "</s>") == .failure(.unknown("vicuna")))
        #expect(ChatFormat.named("t.jinja", fileText: "{{ 'USER: ' + x }}", bos: "<s>", eos: "</s>") == .failure(.unrecognised("t.jinja")))
        // A ChatML template's default system message survives the round trip through Jinja.
        let withSystem = ChatFormat(style: .chatml, defaultSystem: "You're \"helpful\"\nand brief.")
        #expect(ChatFormat(template: withSystem.jinja) == withSystem)
    }
}
