import Foundation
import Testing

/// mi-respond: responses added in order, fields kept, truncation marked, seeds reproducible.
@Suite struct RespondCLITests {
    let records = (0..<5).map { #"{"id":"r\#($0)","instruction":"Say something about \#($0).","extra":[\#($0)]}"# }.joined(separator: "\n") + "\n"

    func decode(_ r: RunResult) -> [[String: Any]] {
        r.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test func addsResponsesInOrderAndMarksTruncation() throws {
        let a = try run("mi-respond", ["--teacher", SFTCLITests.tiny, "--max-tokens", "3", "--batch-size", "2"], stdin: Array(records.utf8))
        #expect(a.status == 0, "\(a.stderr)")
        let out = decode(a)
        #expect(out.map { $0["id"] as? String } == (0..<5).map { "r\($0)" })
        for o in out {
            #expect(o["response"] is String)
            #expect((o["extra"] as? [Int])?.count == 1)
            let responder = o["responder"] as? [String: String]
            #expect(responder?["sha256"]?.count == 64)
        }
        // a random tiny model rarely ends a turn within 3 tokens: those are marked truncated
        #expect(out.contains { $0["truncated"] as? Bool == true })
        // same seed, other batch size: the same responses
        let b = try run("mi-respond", ["--teacher", SFTCLITests.tiny, "--max-tokens", "3", "--batch-size", "5"], stdin: Array(records.utf8))
        #expect(decode(b).map { $0["response"] as? String } == out.map { $0["response"] as? String })
        let v = try run("mi-validate", ["--schema", "response"], stdin: a.stdout)
        #expect(v.status == 0, "\(v.stderr)")
    }

    /// As an interruption leaves it: the first records in OUT.partial. --resume keeps them and
    /// answers the rest with the seeds they would have had, so the file equals an uninterrupted run's.
    @Test func resumeContinuesAnInterruptedOutput() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let flags = ["--teacher", SFTCLITests.tiny, "--max-tokens", "4", "--batch-size", "2", input]
        let lines = try expectResumeEqualsWholeRun("mi-respond", flags, in: dir, keep: 3, records: 5)
        // A partial output from other input is refused, not extended.
        dir.write("other.jsonl.partial", lines[1] + "\n")
        let refused = try run("mi-respond", flags + ["-o", dir.path("other.jsonl"), "--resume"])
        #expect(refused.status == 78, "\(refused.stderr)")
        #expect(refused.stderr.contains("does not match the input at record 1"))
    }

    @Test func recordsWithoutInstructionAreRejected() throws {
        let r = try run("mi-respond", ["--teacher", SFTCLITests.tiny], stdin: Array(#"{"id":"x"}"#.utf8) + [0x0A])
        #expect(r.status == 65)
        #expect(r.stderr.contains("\"instruction\": missing"))
    }
}
