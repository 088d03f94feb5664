import Foundation
import Testing

/// The tools on the Qwen2-style fixture (q/k/v biases; Tests/Reference/make_tiny_hf_fixtures.py):
/// one SFT step and the probe's influence against PyTorch in float64.
@Suite struct Qwen2CLITests {
    static let model = SFTCLITests.fixtures.appendingPathComponent("tiny-hf/qwen2").path

    var expected: [String: Any] {
        get throws {
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.model + "/expected.json"))) as! [String: Any]
        }
    }

    func jsonl(_ records: [[String: Any]]) throws -> String {
        try records.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            .joined(separator: "\n") + "\n"
    }

    func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// One AdamW step (lr 1e-3, no clipping, no weight decay) on the batch of the three fixture
    /// pairs: the step's loss and each pair's loss afterwards (mi-eval) equal PyTorch's.
    @Test func oneSFTStepMatchesPyTorchFloat64() throws {
        let e = try expected, sft = e["sft"] as! [String: Any]
        let pairs = (e["logprobs"] as! [[String: Any]]).map { p -> [String: Any] in
            let completion = p["completion"] as! String
            return ["instruction": p["user"] as! String, "response": String(completion.dropLast("<|im_end|>".count))]
        }
        let dir = TempDir()
        let data = dir.write("data.jsonl", try jsonl(pairs))
        let r = try run(
            "mi-sft",
            [
                "--model", Self.model, "--data", data, "--out", dir.path("out"), "--lr", "1e-3", "--batch-size", "3", "--grad-clip", "0",
                "--max-steps", "1", "--no-shuffle", "--metrics", dir.path("metrics.jsonl"),
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let step = lines(try String(contentsOfFile: dir.path("metrics.jsonl"), encoding: .utf8))[0]
        #expect(abs((step["loss"] as! Double) - (sft["loss_before"] as! Double)) < 1e-4)
        let eval = try run("mi-eval", ["--model", dir.path("out"), "--data", data])
        #expect(eval.status == 0, "\(eval.stderr)")
        let after = lines(eval.stdoutText).map { $0["loss"] as! Double }
        let reference = sft["losses_after"] as! [Double]
        #expect(after.count == reference.count)
        for (a, b) in zip(after, reference) { #expect(abs(a - b) < 2e-3, "\(a) vs \(b)") }
        // The step moved the losses well beyond the tolerance, so the comparison checks the update.
        #expect(reference.reduce(0, +) / 3 < (sft["loss_before"] as! Double) - 0.1)
    }

    /// Local data influence of three records on a three-record reference set, exact method.
    @Test func probeInfluenceMatchesPyTorchFloat64() throws {
        let influence = try expected["influence"] as! [String: Any]
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", try jsonl(influence["reference"] as! [[String: Any]]))
        let records = (influence["records"] as! [[String: Any]]).enumerated().map { i, r -> [String: Any] in
            ["id": "r\(i)", "prompt_id": "p\(i)", "instruction": r["instruction"]!, "response": r["response"]!]
        }
        let r = try run("mi-probe", ["--student", Self.model, "--reference", refs, "--lr", "1e-3"], stdin: Array(try jsonl(records).utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let got = lines(r.stdoutText)
        #expect(got.count == 3)
        for (g, want) in zip(got, influence["records"] as! [[String: Any]]) {
            let a = g["influence"] as! Double, b = want["influence"] as! Double
            #expect(abs(a - b) < 1e-3 + 1e-2 * abs(b), "\(g["id"]!): \(a) vs \(b)")
            #expect(abs((g["ref_loss_before"] as! Double) - (influence["ref_loss_before"] as! Double)) < 1e-4)
        }
    }
}
