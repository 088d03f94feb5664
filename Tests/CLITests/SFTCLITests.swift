import Foundation
import Testing

/// mi-sft end to end: the acceptance run against PyTorch, and resume equal to an uninterrupted run.
@Suite struct SFTCLITests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-hf/smollm").path
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let gguf: String? = ProcessInfo.processInfo.environment["MI_MODEL"].flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }

    let records =
        (0..<6).map { #"{"id":"r\#($0)","instruction":"Say the number \#($0).","response":"The number is \#($0)."}"# }.joined(separator: "\n") + "\n"

    @Test func resumeEqualsAnUninterruptedRun() throws {
        let dir = TempDir()
        let data = dir.write("data.jsonl", records)
        let flags = [
            "--model", Self.tiny, "--data", data, "--batch-size", "2", "--lr", "1e-3", "--schedule", "cosine",
            "--warmup-ratio", "0.2", "--epochs", "2", "--shuffle", "--seed", "7", "--grad-clip", "1",
        ]
        let full = try run("mi-sft", flags + ["--out", dir.path("full"), "--metrics", dir.path("full.jsonl")])
        #expect(full.status == 0, "\(full.stderr)")
        let part = try run("mi-sft", flags + ["--out", dir.path("split"), "--metrics", dir.path("split.jsonl"), "--stop-after", "2"])
        #expect(part.status == 0, "\(part.stderr)")
        #expect(dir.exists("split/optimizer.safetensors"))
        let rest = try run("mi-sft", flags + ["--out", dir.path("split"), "--metrics", dir.path("split.jsonl"), "--resume"])
        #expect(rest.status == 0, "\(rest.stderr)")
        #expect(dir.read("full/model.safetensors") == dir.read("split/model.safetensors"))
        #expect(!dir.read("full/model.safetensors").isEmpty)
        let a = String(decoding: dir.read("full.jsonl"), as: UTF8.self).split(separator: "\n")
        let b = String(decoding: dir.read("split.jsonl"), as: UTF8.self).split(separator: "\n")
        #expect(a.count == 6 && b.count == 6)
        // same losses and learning rates step by step (times differ)
        func strip(_ l: Substring) -> String { l.replacingOccurrences(of: #","elapsed_s":[0-9.e-]+"#, with: "", options: .regularExpression) }
        #expect(a.map(strip) == b.map(strip))
        // a resume with other settings is refused with its own exit code
        let other = try run("mi-sft", flags.map { $0 == "1e-3" ? "2e-3" : $0 } + ["--out", dir.path("split"), "--resume"])
        #expect(other.status == 78, "\(other.stderr)")
        // and so is one with the products in another precision
        let bf16 = try run("mi-sft", flags + ["--out", dir.path("split"), "--resume", "--compute", "bf16"])
        #expect(bf16.status == 78 && bf16.stderr.contains("made with compute = f32, this run has compute = bf16"), "\(bf16.stderr)")
    }

    @Test func badRecordsStopTheRun() throws {
        let dir = TempDir()
        let data = dir.write("data.jsonl", #"{"instruction":"x"}"# + "\n")
        let r = try run("mi-sft", ["--model", Self.tiny, "--data", data, "--out", dir.path("o")])
        #expect(r.status == 65)
        #expect(r.stderr.contains("data.jsonl:1") && r.stderr.contains("\"response\": missing"))
        #expect(!dir.exists("o"))
    }

    /// Acceptance (a): batch size 1 over two records (two steps) with torch-equivalent settings;
    /// the checkpoint's log-probabilities agree with PyTorch float64.
    @Test(.enabled(if: gguf != nil, "set MI_MODEL (make test does)"))
    func twoStepsMatchPyTorch() throws {
        let f = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("training.json"))) as! [String: Any]
        let examples = f["examples"] as! [[String: Any]]
        let dir = TempDir()
        let lines = try examples.map { e -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["instruction": e["user"]!, "response": e["response"]!]), as: UTF8.self)
        }
        let data = dir.write("two.jsonl", lines.joined(separator: "\n") + "\n")
        let r = try run(
            "mi-sft",
            [
                "--model", Self.gguf!, "--data", data, "--out", dir.path("ckpt"), "--lr", "1e-5", "--weight-decay", "0",
                "--schedule", "constant", "--grad-clip", "0", "--beta1", "0.9", "--beta2", "0.999", "--eps", "1e-8",
                "--no-shuffle", "--batch-size", "1",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let pairs = try examples.map { e -> String in
            String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": e["user"]!, "completion": e["response"]!]), as: UTF8.self)
        }
        let l = try run("mi-model", ["logprobs", "--chat", "--model", dir.path("ckpt")], stdin: Array((pairs.joined(separator: "\n") + "\n").utf8))
        #expect(l.status == 0, "\(l.stderr)")
        let sft = f["sft"] as! [String: Any]
        let got = l.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        for (i, o) in got.enumerated() {
            let sum = o["sum"] as! Double, n = Double((o["logprobs"] as! [Double]).count)
            #expect(abs(sum - (sft["example_logprob_sum"] as! [Double])[i]) < 2e-2, "example \(i): \(sum)")
            #expect(abs(-sum / n - (sft["example_mean_loss"] as! [Double])[i]) < 2e-3)
        }
    }
}
