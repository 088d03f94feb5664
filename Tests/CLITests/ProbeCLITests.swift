import Foundation
import Testing

/// mi-probe: local data influence against PyTorch, and shards that add up to the whole run.
@Suite struct ProbeCLITests {
    static let data = SFTCLITests.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data/reference.jsonl").path

    func lines(_ path: String, ids: [String]) throws -> String {
        let all = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        return all.filter { l in ids.contains { l.contains("\"id\": \"\($0)\"") } }.joined(separator: "\n") + "\n"
    }

    func decode(_ r: RunResult) -> [[String: Any]] {
        r.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Influence values are around 1e-3 here; they agree with PyTorch float64 to about 1e-6, so
    /// the check uses 1e-4 (the issue's 2e-3 would not distinguish them from zero).
    /// influence.json, its reference records written to `dir`, and the records it scores as JSONL.
    func influenceFixture(_ dir: TempDir) throws -> (f: [String: Any], refs: String, records: [[String: Any]], input: String) {
        let f =
            try JSONSerialization.jsonObject(with: Data(contentsOf: SFTCLITests.fixtures.appendingPathComponent("influence.json"))) as! [String: Any]
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: f["reference_ids"] as! [String]))
        let records = f["records"] as! [[String: Any]]
        return (f, refs, records, try lines(Self.data, ids: records.map { $0["id"] as! String }))
    }

    @Test(.enabled(if: SFTCLITests.gguf != nil, "set MI_MODEL (make test does)"))
    func influenceMatchesPyTorch() throws {
        let dir = TempDir()
        let (f, refs, records, input) = try influenceFixture(dir)
        let r = try run("mi-probe", ["--student", SFTCLITests.gguf!, "--reference", refs, "--lr", "1e-5"], stdin: Array(input.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let out = decode(r)
        #expect(out.map { $0["id"] as? String } == records.map { $0["id"] as? String })
        for (o, e) in zip(out, records) {
            #expect(abs((o["influence"] as! Double) - (e["influence"] as! Double)) < 1e-4, "\(e["id"]!)")
            #expect(abs((o["ref_loss_before"] as! Double) - (f["ref_loss_before"] as! Double)) < 2e-3)
            #expect((o["probe"] as? [String: Any])?["method"] as? String == "exact")
        }
    }

    /// With bf16 products the probe ranks the fixture's records as float64 does and gives each
    /// the same sign, exactly (its reference losses stay f32) and first-order.
    @Test(
        .enabled(if: SFTCLITests.gguf != nil, "set MI_MODEL (make test does)"),
        .enabled(if: cpuHasAVX512BF16, "no AVX512-BF16: the portable bf16 loop is too slow for the default model"),
        arguments: ["exact", "first-order"])
    func influenceWithBF16ProductsRanksAsFloat64(method: String) throws {
        let dir = TempDir()
        let (_, refs, records, input) = try influenceFixture(dir)
        let r = try run(
            "mi-probe", ["--student", SFTCLITests.gguf!, "--reference", refs, "--lr", "1e-5", "--method", method, "--compute", "bf16"],
            stdin: Array(input.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let got = decode(r).map { $0["influence"] as! Double }, want = records.map { $0["influence"] as! Double }
        #expect(got.count == want.count)
        let rank = { (x: [Double]) in x.indices.sorted { x[$0] < x[$1] } }
        #expect(rank(got) == rank(want), "\(got) vs \(want)")
        for (a, b) in zip(got, want) { #expect((a > 0) == (b > 0), "\(a) vs \(b)") }
    }

    @Test func shardsConcatenateToTheWholeRun() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: ["ref-001", "ref-002"]))
        let input = try lines(Self.data, ids: (10...17).map { "ref-0\($0)" })
        let flags = ["--student", SFTCLITests.tiny, "--reference", refs, "--method", "first-order", "--lr", "1e-3"]
        let whole = try run("mi-probe", flags, stdin: Array(input.utf8))
        #expect(whole.status == 0, "\(whole.stderr)")
        var parts: [[String: Any]] = []
        for k in 0..<3 {
            let s = try run("mi-probe", flags + ["--shard", "\(k)/3"], stdin: Array(input.utf8))
            #expect(s.status == 0, "\(s.stderr)")
            parts += decode(s)
        }
        let byID = { (rs: [[String: Any]]) in Dictionary(uniqueKeysWithValues: rs.map { ($0["id"] as! String, $0["influence"] as! Double) }) }
        #expect(byID(parts) == byID(decode(whole)))
        #expect(parts.count == 8)
    }

    /// --reference-parts 2: each record's influence on part k (reference records k, k+2, …) is the
    /// influence a probe with only those records as its reference set measures, and the influence
    /// is the whole reference set's, as without parts.
    @Test(arguments: ["exact", "first-order"])
    func referencePartsAreProbesOnTheParts(method: String) throws {
        let dir = TempDir()
        let refIDs = ["ref-001", "ref-002", "ref-003", "ref-004", "ref-005"]
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: refIDs))
        let input = Array(try lines(Self.data, ids: (10...13).map { "ref-0\($0)" }).utf8)
        let flags = ["--student", SFTCLITests.tiny, "--method", method, "--lr", "1e-3"]
        func influences(_ extra: [String]) throws -> [[String: Any]] {
            let r = try run("mi-probe", flags + extra, stdin: input)
            #expect(r.status == 0, "\(r.stderr)")
            return decode(r)
        }
        let split = try influences(["--reference", refs, "--reference-parts", "2"])
        let whole = try influences(["--reference", refs])
        let part0 = try influences(["--reference", dir.write("p0.jsonl", try lines(Self.data, ids: ["ref-001", "ref-003", "ref-005"]))])
        let part1 = try influences(["--reference", dir.write("p1.jsonl", try lines(Self.data, ids: ["ref-002", "ref-004"]))])
        #expect(split.count == 4 && whole.count == 4)
        let close = { (a: Double, b: Double) in abs(a - b) <= 1e-6 + 1e-3 * abs(b) }
        for i in 0..<4 {
            let parts = split[i]["influence_parts"] as! [Double], influence = split[i]["influence"] as! Double
            #expect(parts.count == 2)
            #expect(close(parts[0], part0[i]["influence"] as! Double), "\(parts[0]) vs \(part0[i]["influence"]!)")
            #expect(close(parts[1], part1[i]["influence"] as! Double), "\(parts[1]) vs \(part1[i]["influence"]!)")
            #expect(close(influence, whole[i]["influence"] as! Double), "\(influence) vs \(whole[i]["influence"]!)")
            #expect(abs(influence - (3 * parts[0] + 2 * parts[1]) / 5) <= 1e-9 * max(abs(influence), 1e-6))
            #expect(whole[i]["influence_parts"] == nil)
        }
        #expect(part0.map { $0["influence"] as! Double } != part1.map { $0["influence"] as! Double })
        let tooMany = try run("mi-probe", flags + ["--reference", refs, "--reference-parts", "6"], stdin: input)
        #expect(tooMany.status == 64, "\(tooMany.stderr)")
        #expect(tooMany.stderr.contains("--reference-parts 6 is more than the 5 reference records"), "\(tooMany.stderr)")
    }

    @Test func resumeContinuesAnInterruptedOutput() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: ["ref-001", "ref-002"]))
        let input = dir.write("in.jsonl", try lines(Self.data, ids: (10...15).map { "ref-0\($0)" }))
        let flags = ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3", input]
        try expectResumeEqualsWholeRun("mi-probe", flags, in: dir, keep: 3, records: 6, tornTail: "{\"id\":\"torn")
    }

    /// Unusable records stop the run with file, line and reason (exit 65), or with --bad-records
    /// go to the dead-letter file while the rest are scored; a bad reference record is named too.
    @Test func badInputsAreNamedOrDiverted() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: ["ref-001", "ref-002"]))
        let good = try lines(Self.data, ids: ["ref-010", "ref-011"]).split(separator: "\n").map(String.init)
        let flags = ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3"]
        let cases: [(String, String)] = [
            (#"{"id":"x","instruction":"Say hi."}"#, #"field "response": missing"#),
            (#"{"id":"x","instruction":7,"response":"hi"}"#, #"field "instruction": expected string, got integer"#),
            (#"{"id":"x","instruction":"Say hi.","response":"hi","input":["a"]}"#, #"field "input": expected string, got array"#),
            (#"["not", "an", "object"]"#, "record is a JSON array, expected an object"),
        ]
        for (bad, message) in cases {
            let input = [good[0], bad, good[1]].joined(separator: "\n") + "\n"
            let r = try run("mi-probe", flags + ["-o", dir.path("out.jsonl")], stdin: Array(input.utf8))
            #expect(r.status == 65, "\(r.stderr)")
            #expect(r.stderr.contains("<stdin>:2: ") && r.stderr.contains(message), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.path("out.jsonl"))) // a failed run commits nothing

            let diverted = try run("mi-probe", flags + ["--bad-records", dir.path("bad.jsonl")], stdin: Array(input.utf8))
            #expect(diverted.status == 0, "\(diverted.stderr)")
            let scored = diverted.stdoutText.split(separator: "\n")
            #expect(scored.count == 2 && scored.allSatisfy { $0.contains("\"influence\":") })
            let dead = String(decoding: dir.read("bad.jsonl"), as: UTF8.self).split(separator: "\n")
            #expect(dead.count == 1 && dead[0].contains("\"line\":2"), "\(dead)")
        }
        dir.write("bad-refs.jsonl", try lines(Self.data, ids: ["ref-001"]) + #"{"id":"r2","instruction":"Say hi."}"# + "\n")
        let badRef = try run(
            "mi-probe", ["--student", SFTCLITests.tiny, "--reference", dir.path("bad-refs.jsonl")],
            stdin: Array((good[0] + "\n").utf8))
        #expect(badRef.status == 65, "\(badRef.stderr)")
        #expect(badRef.stderr.contains("bad-refs.jsonl:2") && badRef.stderr.contains("\"response\": missing"), "\(badRef.stderr)")
        let usage = try run("mi-probe", flags + ["--shard", "3/3"], stdin: [])
        #expect(usage.status == 64)
        #expect(usage.stderr.contains("--shard must be K/N"))
    }

    /// With --bad-records a diverted record is not in the output, so a resumed run must count only
    /// the scored ones: the resumed file equals the uninterrupted one.
    @Test func resumeWithDivertedRecordsEqualsTheWholeRun() throws {
        let dir = TempDir()
        let refs = dir.write("refs.jsonl", try lines(Self.data, ids: ["ref-001", "ref-002"]))
        var records = try lines(Self.data, ids: (10...14).map { "ref-0\($0)" }).split(separator: "\n").map(String.init)
        records.insert(#"{"id":"bad","instruction":"no response"}"#, at: 1)
        let input = dir.write("in.jsonl", records.joined(separator: "\n") + "\n")
        let flags = ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3", "--bad-records", dir.path("bad.jsonl"), input]
        try expectResumeEqualsWholeRun("mi-probe", flags, in: dir, keep: 2, records: 5)
    }
}

/// The CPU multiplies bf16 natively (the bf16 tests on the default model need it to be quick).
let cpuHasAVX512BF16: Bool = {
    guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return false }
    return info.split(separator: "\n").contains { $0.hasPrefix("flags") && $0.split(separator: " ").contains("avx512_bf16") }
}()
