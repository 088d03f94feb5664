import Foundation
import Testing

/// The fixes that kept the loop's result from meaning what it says: truncated responses,
/// response penalties, rank pairing, centred influence, DPO's held-out pairs.
@Suite struct ExperimentFixesTests {
    func rows(_ r: RunResult) -> [[String: Any]] {
        r.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    static let ended = #"{"id":"a","instruction":"Name a colour.","response":"Blue is a colour of the sky","truncated":false}"#
    static let cut = #"{"id":"b","instruction":"Name a colour.","response":"Blue is a colour of the sky","truncated":true}"#

    /// A truncated response is scored over its own tokens only: without the end-of-turn marker
    /// that mi-model's chat log-probabilities put last.
    @Test func evalScoresATruncatedResponseWithoutTheEndOfTurn() throws {
        let dir = TempDir()
        let data = dir.write("d.jsonl", Self.ended + "\n" + Self.cut + "\n")
        let e = try run("mi-eval", ["--model", SFTCLITests.tiny, "--data", data])
        #expect(e.status == 0, "\(e.stderr)")
        let out = rows(e)
        #expect(out.count == 2)
        let pair = #"{"prompt":"Name a colour.","completion":"Blue is a colour of the sky"}"# + "\n"
        let l = try run("mi-model", ["logprobs", "--chat", "--model", SFTCLITests.tiny], stdin: Array(pair.utf8))
        let lp = (rows(l)[0]["logprobs"] as! [Double])
        let withEnd = -lp.reduce(0, +) / Double(lp.count)
        let withoutEnd = -lp.dropLast().reduce(0, +) / Double(lp.count - 1)
        // mi-eval scores both records in one batch, mi-model one: BLAS may round a product of
        // another height differently (a few 1e-8 with OpenBLAS's Cooper Lake kernels).
        let tolerance = 1e-6
        #expect(abs((out[0]["loss"] as! Double) - withEnd) < tolerance)
        #expect(abs((out[1]["loss"] as! Double) - withoutEnd) < tolerance)
        #expect(abs(withEnd - withoutEnd) > 100 * tolerance)

        let dropped = try run("mi-eval", ["--model", SFTCLITests.tiny, "--data", data, "--truncated", "drop"])
        #expect(dropped.status == 0, "\(dropped.stderr)")
        #expect(rows(dropped).map { $0["id"] as? String } == ["a"])
        #expect(dropped.stderr.contains("1 records with a truncated response left out"))
    }

    /// SFT trains a truncated response without the end-of-turn token (one completion token
    /// fewer), or leaves it out.
    @Test func sftTrainsATruncatedResponseWithoutTheEndOfTurn() throws {
        let dir = TempDir()
        func tokens(_ record: String, _ extra: [String] = []) throws -> (RunResult, Int?) {
            let data = dir.write("d.jsonl", record + "\n")
            let r = try run(
                "mi-sft", ["--model", SFTCLITests.tiny, "--data", data, "--out", dir.path("o"), "--metrics", dir.path("m.jsonl")] + extra)
            let line = String(decoding: dir.read("m.jsonl"), as: UTF8.self).split(separator: "\n").first.map {
                try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
            return (r, line?["tokens"] as? Int)
        }
        let (a, ended) = try tokens(Self.ended)
        #expect(a.status == 0, "\(a.stderr)")
        let (b, cut) = try tokens(Self.cut)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(ended != nil && cut == ended! - 1)
        let (c, _) = try tokens(Self.cut, ["--truncated", "drop"])
        #expect(c.status == 64, "\(c.stderr)")
        #expect(c.stderr.contains("1 records with a truncated response left out"))
    }

    /// The probe leaves a truncated record out with --truncated drop (counted), and scores it
    /// differently from the same text that ended.
    @Test func probeHandlesTruncatedResponses() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", #"{"id":"r","instruction":"Say hi.","response":"Hi there."}"# + "\n")
        let input = Array((Self.ended + "\n" + Self.cut + "\n").utf8)
        let open = try run("mi-probe", ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3"], stdin: input)
        #expect(open.status == 0, "\(open.stderr)")
        let scored = rows(open)
        #expect(scored.count == 2)
        #expect((scored[0]["influence"] as! Double) != (scored[1]["influence"] as! Double))
        let drop = try run("mi-probe", ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3", "--truncated", "drop"], stdin: input)
        #expect(drop.status == 0, "\(drop.stderr)")
        #expect(rows(drop).map { $0["id"] as? String } == ["a"])
        #expect(drop.stderr.contains("1 with a truncated response left out"))
    }

    /// The presence penalty reaches mi-respond's sampler: greedy decoding of a random model
    /// repeats tokens, and a large penalty changes what it writes.
    @Test func respondAppliesThePresencePenalty() throws {
        let records = (0..<3).map { #"{"id":"r\#($0)","instruction":"Say something about \#($0)."}"# }.joined(separator: "\n") + "\n"
        func responses(_ penalty: String) throws -> [String] {
            let r = try run(
                "mi-respond",
                [
                    "--teacher", SFTCLITests.tiny, "--max-tokens", "12", "--temperature", "0",
                    "--presence-penalty", penalty,
                ], stdin: Array(records.utf8))
            #expect(r.status == 0, "\(r.stderr)")
            return rows(r).map { $0["response"] as! String }
        }
        let plain = try responses("0"), penalised = try responses("100")
        #expect(plain != penalised)
        #expect(try responses("100") == penalised)
    }

    /// Rank pairing pairs a prompt whose candidates all lie on one side of zero.
    @Test func rankPairingIgnoresTheSign() throws {
        func record(_ id: String, _ prompt: String, _ influence: Double) -> String {
            #"{"id":"\#(id)","prompt_id":"\#(prompt)","prompt":"make a task","raw":"<instruction>\#(id)</instruction>","instruction":"\#(id)","response":"r","influence":\#(influence)}"#
        }
        let input =
            [
                record("a1", "p1", 0.2), record("a2", "p1", 0.5), record("a3", "p1", 0.3),
                record("b1", "p2", -0.1), record("b2", "p2", -0.1), // a tie: no pair
                record("c1", "p3", -0.2), record("c2", "p3", -0.05),
            ].joined(separator: "\n") + "\n"
        let paper = try run("mi-pair", [], stdin: Array(input.utf8))
        #expect(paper.status == 0, "\(paper.stderr)")
        #expect(rows(paper).isEmpty)
        let rank = try run("mi-pair", ["--mode", "rank"], stdin: Array(input.utf8))
        #expect(rank.status == 0, "\(rank.stderr)")
        #expect(rows(rank).map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" } == ["a2>a1", "c2>c1"])
        let margin = try run("mi-pair", ["--mode", "rank", "--min-margin", "0.2"], stdin: Array(input.utf8))
        #expect(rows(margin).map { $0["chosen_id"] as! String } == ["a2"])
    }

    /// Centring subtracts influence(0), the momentum-only step's influence: zero for a fresh
    /// optimizer, not zero for a student with AdamW state, and the same for every record.
    @Test func momentumCentringSubtractsTheSharedStep() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", #"{"id":"r","instruction":"Say hi.","response":"Hi there."}"# + "\n")
        let train = dir.write("t.jsonl", Self.ended + "\n" + #"{"id":"c","instruction":"Add 1 and 1.","response":"2."}"# + "\n")
        let sft = try run("mi-sft", ["--model", SFTCLITests.tiny, "--data", train, "--out", dir.path("student"), "--lr", "1e-3", "--save-optimizer"])
        #expect(sft.status == 0, "\(sft.stderr)")
        let input = Array((Self.ended + "\n" + #"{"id":"d","instruction":"Name a fruit.","response":"An apple."}"# + "\n").utf8)
        for method in ["exact", "first-order"] {
            let r = try run(
                "mi-probe",
                [
                    "--student", dir.path("student"), "--reference", refs, "--lr", "1e-3", "--method", method,
                    "--center", "momentum",
                ], stdin: input)
            #expect(r.status == 0, "\(r.stderr)")
            let out = rows(r)
            #expect(out.count == 2)
            for o in out {
                let probe = o["probe"] as! [String: Any]
                let shared = probe["momentum_influence"] as! Double
                #expect(shared != 0, "\(method)")
                #expect(abs((o["influence_uncentered"] as! Double) - (o["influence"] as! Double) - shared) < 1e-12)
            }
            let plain = try run(
                "mi-probe", ["--student", dir.path("student"), "--reference", refs, "--lr", "1e-3", "--method", method], stdin: input)
            #expect(zip(rows(plain), out).allSatisfy { abs(($0["influence"] as! Double) - ($1["influence_uncentered"] as! Double)) < 1e-9 })
        }
        let fresh = try run("mi-probe", ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3", "--center", "momentum"], stdin: input)
        #expect(rows(fresh).allSatisfy { (($0["probe"] as! [String: Any])["momentum_influence"] as! Double) == 0 })
    }

    /// --heldout-fraction keeps whole prompts out of training and ends the metrics with how the
    /// trained model ranks them.
    @Test func dpoReportsHeldOutPairs() throws {
        let dir = TempDir()
        let lines = (0..<20).map { i in
            #"{"prompt_id":"q\#(i)","prompt":"Name colour \#(i).","chosen":"Blue \#(i).","rejected":"I like turtles \#(i)."}"#
        }
        let data = dir.write("pairs.jsonl", lines.joined(separator: "\n") + "\n")
        let r = try run(
            "mi-dpo",
            [
                "--model", SFTCLITests.tiny, "--pairs", data, "--out", dir.path("o"), "--metrics", dir.path("m.jsonl"),
                "--batch-size", "4", "--lr", "1e-3", "--epochs", "3", "--heldout-fraction", "0.3",
            ])
        #expect(r.status == 0, "\(r.stderr)")
        let metrics = String(decoding: dir.read("m.jsonl"), as: UTF8.self).split(separator: "\n").map {
            try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let last = metrics.last!
        #expect(last["stage"] as? String == "dpo-heldout")
        let held = last["pairs"] as! Int
        #expect(held > 0 && held < 20)
        // Training steps cover only the other pairs: 3 epochs of ceil((20 − held) / 4) steps.
        #expect(metrics.count - 1 == 3 * ((20 - held + 3) / 4))
        let acc = last["accuracy"] as! Double
        #expect(acc >= 0 && acc <= 1)
        // Similar held-out pairs: the trained preference carries over.
        #expect((last["reward_margin"] as! Double) > 0)
        #expect((last["chosen_logp_shift"] as! Double) > (last["rejected_logp_shift"] as! Double))
        // The held-out line is a valid metrics record too: its loss is the held-out DPO loss.
        #expect((last["loss"] as! Double) < log(2))
        let v = try run("mi-validate", ["--schema", "metrics", dir.path("m.jsonl")])
        #expect(v.status == 0, "\(v.stderr)")

        // mi-eval --pairs ranks the same held-out pairs the same way, from the checkpoint and the
        // starting model: the metrics agree with mi-dpo's line, pair by pair.
        let e = try run(
            "mi-eval", ["--model", dir.path("o"), "--against", SFTCLITests.tiny, "--pairs", data, "--heldout-fraction", "0.3"])
        #expect(e.status == 0, "\(e.stderr)")
        let line = e.stderrLines.last { $0.contains("\"stage\":\"pairs\"") }.map { String($0.drop { $0 != "{" }) }
        let ranked = try JSONSerialization.jsonObject(with: Data((line ?? "{}").utf8)) as! [String: Any]
        #expect(ranked["pairs"] as? Int == held)
        for key in ["accuracy", "reward_margin", "loss", "chosen_logp_shift", "rejected_logp_shift"] {
            #expect(abs((ranked[key] as? Double ?? .nan) - (last[key] as! Double)) < 1e-9, "\(key)")
        }
        let perPair = e.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(perPair.count == held)
        #expect(Double(perPair.filter { $0["correct"] as? Bool == true }.count) == acc * Double(held))
        let usage = try run("mi-eval", ["--model", dir.path("o"), "--pairs", data])
        #expect(usage.status == 64 && usage.stderr.contains("--pairs needs --against"), "\(usage.stderr)")
        // Options of the other mode are refused, not silently ignored.
        let base = ["--model", dir.path("o"), "--against", SFTCLITests.tiny]
        for (extra, flag) in [
            (["--pairs", data, "--bootstrap", "10"], "--bootstrap goes with --data"),
            (["--pairs", data, "--truncated", "drop"], "--truncated goes with --data"),
            (["--data", data, "--beta", "0.2"], "--beta goes with --pairs"),
            (["--data", data, "--max-length", "64"], "--max-length goes with --pairs"),
        ] {
            let r = try run("mi-eval", base + extra)
            #expect(r.status == 64 && r.stderr.contains(flag), "\(extra): \(r.stderr)")
        }
    }
}
