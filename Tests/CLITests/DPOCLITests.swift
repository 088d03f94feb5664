import Foundation
import Testing

/// mi-dpo end to end.
@Suite struct DPOCLITests {
    static let tiny = SFTCLITests.tiny
    let pairs =
        [
            #"{"id":"p1","prompt":"Name a colour.","chosen":"Blue.","rejected":"I like turtles.","prompt_id":"x"}"#,
            #"{"id":"p2","prompt":"Add 2 and 2.","chosen":"4.","rejected":"5."}"#,
        ].joined(separator: "\n") + "\n"

    @Test func metricsShowLearningAndResumeMatches() throws {
        let dir = TempDir()
        let data = dir.write("pairs.jsonl", pairs)
        let flags = ["--model", Self.tiny, "--pairs", data, "--batch-size", "2", "--epochs", "4", "--lr", "1e-3", "--beta", "0.2"]
        let full = try run("mi-dpo", flags + ["--out", dir.path("full"), "--metrics", dir.path("m.jsonl")])
        #expect(full.status == 0, "\(full.stderr)")
        let lines = String(decoding: dir.read("m.jsonl"), as: UTF8.self).split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(lines.count == 4)
        #expect(abs((lines[0]["loss"] as! Double) - log(2)) < 1e-6, "policy equals reference at the first step")
        #expect((lines[3]["loss"] as! Double) < (lines[0]["loss"] as! Double))
        #expect((lines[3]["reward_margin"] as! Double) > 0)
        #expect(lines[3]["accuracy"] as! Double == 1)
        let part = try run("mi-dpo", flags + ["--out", dir.path("split"), "--stop-after", "2"])
        #expect(part.status == 0, "\(part.stderr)")
        let rest = try run("mi-dpo", flags + ["--out", dir.path("split"), "--resume"])
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(dir.read("full/model.safetensors") == dir.read("split/model.safetensors"))
    }

    @Test func missingFieldsAreReported() throws {
        let dir = TempDir()
        let data = dir.write("pairs.jsonl", #"{"prompt":"x","chosen":"y"}"# + "\n")
        let r = try run("mi-dpo", ["--model", Self.tiny, "--pairs", data, "--out", dir.path("o")])
        #expect(r.status == 65)
        #expect(r.stderr.contains("pairs.jsonl:1") && r.stderr.contains("\"rejected\": missing"))
    }

    /// Acceptance (b): one step over two pairs (batch 2, β 0.1) against PyTorch float64; with
    /// `--nll-weight 1` the same step with the chosen completions' NLL per token added (RPO, the
    /// fixture's "rpo", from a fresh copy of the model).
    @Test(.enabled(if: SFTCLITests.gguf != nil, "set MI_MODEL (make test does)"), arguments: [false, true])
    func oneStepMatchesPyTorch(rpo: Bool) throws {
        let f = try JSONSerialization.jsonObject(with: Data(contentsOf: SFTCLITests.fixtures.appendingPathComponent("dpo.json"))) as! [String: Any]
        let expected = rpo ? f["rpo"] as! [String: Any] : f
        let fixturePairs = f["pairs"] as! [[String: String]]
        let dir = TempDir()
        let data = dir.write(
            "pairs.jsonl",
            try fixturePairs.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }.joined(separator: "\n") + "\n")
        let r = try run(
            "mi-dpo",
            [
                "--model", SFTCLITests.gguf!, "--pairs", data, "--out", dir.path("ckpt"), "--batch-size", "2", "--beta", "0.1",
                "--lr", "1e-5", "--weight-decay", "0", "--schedule", "constant", "--grad-clip", "0", "--no-shuffle",
                "--metrics", dir.path("m.jsonl"),
            ] + (rpo ? ["--nll-weight", "\(expected["nll_weight"] as! Double)"] : []))
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = try JSONSerialization.jsonObject(with: Data(dir.read("m.jsonl"))) as! [String: Any]
        // Plain DPO's first loss is ln 2 exactly; RPO's adds an NLL the float32 forward pass rounds.
        #expect(abs((metrics["loss"] as! Double) - (expected["step_loss"] as! Double)) < (rpo ? 1e-4 : 1e-6))
        #expect((metrics["chosen_nll"] != nil) == rpo)
        var queries: [String] = []
        for p in fixturePairs {
            for key in ["chosen", "rejected"] {
                queries.append(
                    String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": p["prompt"]!, "completion": p[key]!]), as: UTF8.self))
            }
        }
        let l = try run("mi-model", ["logprobs", "--chat", "--model", dir.path("ckpt")], stdin: Array((queries.joined(separator: "\n") + "\n").utf8))
        #expect(l.status == 0, "\(l.stderr)")
        let sums = l.stdoutText.split(separator: "\n").map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["sum"] as! Double
        }
        let after = (expected["after"] as! [[String: Double]]).flatMap { [$0["chosen"]!, $0["rejected"]!] }
        #expect(sums.count == 4)
        for (a, b) in zip(sums, after) { #expect(abs(a - b) < 2e-2, "\(a) vs \(b)") }
    }
}
