import Foundation
import Testing

/// mi-eval: per-record losses equal the mean of mi-model's per-token log-probabilities, and a
/// paired comparison of a model with itself shows no difference.
@Suite struct EvalCLITests {
    @Test func lossesAndPairedComparison() throws {
        let dir = TempDir()
        let data = dir.write(
            "d.jsonl",
            #"{"id":"a","instruction":"Name a colour.","response":"Blue."}"# + "\n"
                + #"{"id":"b","instruction":"Add 2 and 3.","response":"2 + 3 = 5."}"# + "\n")
        let e = try run("mi-eval", ["--model", SFTCLITests.tiny, "--data", data, "--against", SFTCLITests.tiny])
        #expect(e.status == 0, "\(e.stderr)")
        let rows = e.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(rows.count == 2)
        let pairs = #"{"prompt":"Name a colour.","completion":"Blue."}"# + "\n" + #"{"prompt":"Add 2 and 3.","completion":"2 + 3 = 5."}"# + "\n"
        let l = try run("mi-model", ["logprobs", "--chat", "--model", SFTCLITests.tiny], stdin: Array(pairs.utf8))
        let lps = l.stdoutText.split(separator: "\n").map {
            (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["logprobs"] as! [Double]
        }
        for (row, lp) in zip(rows, lps) {
            #expect(abs((row["loss"] as! Double) + lp.reduce(0, +) / Double(lp.count)) < 1e-9)
            #expect(row["loss"] as? Double == row["loss_against"] as? Double)
            #expect(row["tokens"] as? Int == lp.count && row["tokens_against"] as? Int == lp.count)
        }
        #expect(e.stderr.contains("difference 0.0"))
    }
}
