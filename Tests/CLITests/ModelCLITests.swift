import Foundation
import Testing

/// The mi-model record contract, on a Hugging Face directory (a tiny fixture, always) and on the
/// default GGUF (when MI_MODEL is set, as `make test` does).
@Suite struct ModelCLITests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-hf/smollm").path
    static let gguf: String? = ProcessInfo.processInfo.environment["MI_MODEL"].flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
    static var models: [String] { [tiny] + (gguf.map { [$0] } ?? []) }

    func lines(_ r: RunResult) throws -> [[String: Any]] {
        try r.stdoutText.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test(arguments: models)
    func infoDescribesTheModel(model: String) throws {
        let r = try run("mi-model", ["info", "--model", model])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try #require(try lines(r).first)
        #expect(o["architecture"] as? String == "llama")
        #expect(o["chat_format"] as? String == "chatml")
        #expect((o["layers"] as? Int ?? 0) > 0)
    }

    @Test(arguments: models)
    func tokenizeLogprobsAndGenerateKeepOtherFields(model: String) throws {
        let input = #"{"text":"Hello, world!","extra":{"kept":[1.50,"x"]}}"# + "\n"
        let t = try run("mi-model", ["tokenize", "--model", model], stdin: Array(input.utf8))
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdoutText.contains(#""extra":{"kept":[1.50,"x"]}"#))
        #expect(((try lines(t).first?["ids"]) as? [Int])?.isEmpty == false)

        let pairs =
            #"{"id":"a","prompt":"Say hi.","completion":"Hi!"}"# + "\n" + #"{"id":"b","prompt":"Count to three.","completion":"1, 2, 3."}"# + "\n"
        let l = try run("mi-model", ["logprobs", "--chat", "--model", model], stdin: Array(pairs.utf8))
        #expect(l.status == 0, "\(l.stderr)")
        let scored = try lines(l)
        #expect(scored.map { $0["id"] as? String } == ["a", "b"])
        for s in scored {
            let lps = try #require(s["logprobs"] as? [Double])
            #expect(lps.count == (s["ids"] as? [Int])?.count)
            #expect(lps.allSatisfy { $0 <= 0 })
            #expect(abs(lps.reduce(0, +) - (s["sum"] as? Double ?? 1)) < 1e-9)
        }
        // The completion from another field (a generated record's "raw"), scored the same.
        let raw = try run(
            "mi-model", ["logprobs", "--chat", "--completion-field", "raw", "--model", model],
            stdin: Array(pairs.replacing(#""completion""#, with: #""raw""#).utf8))
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(try lines(raw).map { $0["sum"] as? Double } == scored.map { $0["sum"] as? Double })
        #expect(try lines(raw).first?["raw"] as? String == "Hi!")

        let prompts =
            #"{"prompt":"Name a fruit.","n":1}"# + "\n" + #"{"prompt":"Name a fruit.","seed":5}"# + "\n" + #"{"prompt":"Name a fruit.","seed":5}"#
            + "\n"
        let g = try run(
            "mi-model", ["generate", "--chat", "--model", model, "--max-tokens", "8", "--temperature", "1", "--top-p", "0.9", "--seed", "1"],
            stdin: Array(prompts.utf8))
        #expect(g.status == 0, "\(g.stderr)")
        let generated = try lines(g)
        #expect(generated.count == 3)
        #expect(generated[0]["n"] as? Int == 1)
        // same record seed, same completion, wherever the record is
        #expect(generated[1]["ids"] as? [Int] == generated[2]["ids"] as? [Int])
        for o in generated {
            let reason = o["finish_reason"] as? String
            #expect(reason == "stop" || reason == "length")
            if reason == "length" { #expect((o["ids"] as? [Int])?.count == 8) }
        }
    }

    @Test func badInputAndBadModelsFailWithTheirCodes() throws {
        let dir = TempDir()
        let missingField = try run("mi-model", ["logprobs", "--model", Self.tiny], stdin: Array(#"{"prompt":"x"}"#.utf8) + [0x0A])
        #expect(missingField.status == 65)
        #expect(missingField.stderr.contains("<stdin>:1") && missingField.stderr.contains("\"completion\": missing"))
        let wrongType = try run("mi-model", ["tokenize", "--model", Self.tiny], stdin: Array(#"{"text":3}"#.utf8) + [0x0A])
        #expect(wrongType.status == 65)
        #expect(wrongType.stderr.contains("expected string, got integer"))
        let notAModel = dir.write("junk.gguf", "not a model at all")
        let r = try run("mi-model", ["info", "--model", notAModel])
        #expect(r.status == 65)
        #expect(r.stderr.contains("bad magic"))
        let missing = try run("mi-model", ["tokenize", "--model", dir.path("nope.gguf")], stdin: [])
        #expect(missing.status == 66)
        let usage = try run("mi-model", ["generate", "--model", Self.tiny, "--top-p", "2"], stdin: [])
        #expect(usage.status == 64)
    }

    @Test func exportCutsBlocksAndRefusesBadLists() throws {
        let dir = TempDir()
        let r = try run("mi-model", ["export", "--model", Self.tiny, "--out", dir.path("cut.gguf"), "--layers", "1", "--format", "F32"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("kept 1 of 2 blocks"))
        let info = try #require(try lines(try run("mi-model", ["info", "--model", dir.path("cut.gguf")])).first)
        #expect(info["layers"] as? Int == 1)
        let bad = try run("mi-model", ["export", "--model", Self.tiny, "--out", dir.path("bad.gguf"), "--layers", "0-2"])
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("'0-2' is outside the model's blocks 0-1"))
        #expect(!dir.exists("bad.gguf"))
    }
}
