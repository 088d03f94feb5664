import Foundation
import Testing

/// mi-pair's rule on crafted inputs: chosen > 0 > rejected within a prompt, options, and grouping.
@Suite struct PairCLITests {
    func record(_ id: String, _ prompt: String, _ influence: Double) -> String {
        #"{"id":"\#(id)","prompt_id":"\#(prompt)","prompt":"make a task","raw":"<instruction>\#(id)</instruction>","instruction":"\#(id)","response":"r","influence":\#(influence)}"#
    }

    func pairs(_ r: RunResult) -> [[String: Any]] {
        r.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    var input: String {
        [
            record("a1", "p1", 0.3), record("a2", "p1", -0.1), record("a3", "p1", 0.1), record("a4", "p1", -0.4), record("a5", "p1", 0),
            record("b1", "p2", 0.2), record("b2", "p2", 0.5), // no negative: no pairs
            record("c1", "p3", -0.2), record("c2", "p3", 0.05),
        ].joined(separator: "\n") + "\n"
    }

    @Test func everyCombinationOfHelpfulAndHarmful() throws {
        let r = try run("mi-pair", [], stdin: Array(input.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        let ps = pairs(r)
        // p1: {a1, a3} × {a2, a4}, largest margin first; zero influence is neither side. p3: c2 × c1.
        #expect(ps.map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" } == ["a1>a4", "a3>a4", "a1>a2", "a3>a2", "c2>c1"])
        #expect(ps.allSatisfy { ($0["chosen_influence"] as! Double) > 0 && ($0["rejected_influence"] as! Double) < 0 })
        #expect(ps[0]["chosen"] as? String == "<instruction>a1</instruction>")
        #expect(ps[0]["prompt"] as? String == "make a task")
        #expect(r.stderr.contains("3 prompts: 2 with pairs, 1 without; 5 pairs"))
        let v = try run("mi-validate", ["--schema", "pair"], stdin: r.stdout)
        #expect(v.status == 0, "\(v.stderr)")
    }

    @Test func optionsLimitThePairs() throws {
        let best = pairs(try run("mi-pair", ["--mode", "best-worst"], stdin: Array(input.utf8)))
        #expect(best.map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" } == ["a1>a4", "c2>c1"])
        let capped = pairs(try run("mi-pair", ["--max-pairs-per-prompt", "1", "--min-margin", "0.3"], stdin: Array(input.utf8)))
        #expect(capped.map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" } == ["a1>a4"])
    }

    /// --max-length-ratio compares only responses of similar length: the widest pair of p1 (a
    /// 400-character chosen against a 100-character rejected) is not made, and best-worst and rank
    /// take the widest margin among the pairs that remain.
    @Test func lengthRatioPairsOnlySimilarLengths() throws {
        func r(_ id: String, _ influence: Double, _ length: Int) -> String {
            #"{"id":"\#(id)","prompt_id":"p1","prompt":"make a task","raw":"\#(id)","instruction":"\#(id)","response":"\#(String(repeating: "é", count: length))","influence":\#(influence)}"#
        }
        let input = Array(
            ([r("a", 0.3, 400), r("b", 0.1, 120), r("c", -0.2, 100), r("d", -0.1, 500), r("e", -0.06, 110)].joined(separator: "\n") + "\n").utf8)
        func ids(_ args: [String]) throws -> [String] {
            let result = try run("mi-pair", args, stdin: input)
            #expect(result.status == 0, "\(result.stderr)")
            return pairs(result).map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" }
        }
        #expect(try ids([]) == ["a>c", "a>d", "a>e", "b>c", "b>d", "b>e"])
        #expect(try ids(["--max-length-ratio", "1.3"]) == ["a>d", "b>c", "b>e"])
        #expect(try ids(["--max-length-ratio", "1.3", "--mode", "best-worst"]) == ["a>d"])
        #expect(try ids(["--max-length-ratio", "1.1", "--mode", "best-worst"]) == ["b>e"])
        #expect(try ids(["--max-length-ratio", "1.1", "--mode", "rank"]) == ["b>e"])
        #expect(try ids(["--max-length-ratio", "1.05", "--mode", "rank"]) == [])
        #expect(try ids(["--mode", "rank"]) == ["a>c"])
        let bad = try run("mi-pair", ["--max-length-ratio", "0.5"], stdin: input)
        #expect(bad.status != 0 && bad.stderr.contains("--max-length-ratio"))
    }

    /// --length-adjust: influences on the line 0.05 − 0.02·ln(length) plus residuals that sum to
    /// zero and are uncorrelated with ln(length), so the fit is that line exactly and the pairs are
    /// decided by the residuals: the longer answer can win, and a prompt whose raw influences are all
    /// negative gets pairs.
    @Test func lengthAdjustDecidesByTheResidual() throws {
        let ln10 = 2.302585092994046
        let candidates: [(String, String, Int, Double)] = [
            ("a", "p1", 10, 0.02), ("b", "p1", 100, -0.04), ("c", "p1", 1000, 0.02),
            ("d", "p2", 10, -0.01), ("e", "p2", 100, 0.02), ("f", "p2", 1000, -0.01),
        ]
        let lines = candidates.map { id, prompt, length, residual in
            let influence = 0.05 - 0.02 * ln10 * Double(String(length).count - 1) + residual
            return
                #"{"id":"\#(id)","prompt_id":"\#(prompt)","prompt":"make a task","raw":"\#(id)","instruction":"\#(id)","response":"\#(String(repeating: "x", count: length))","influence":\#(influence)}"#
        }
        let dir = TempDir()
        let file = dir.write("scored.jsonl", lines.joined(separator: "\n") + "\n")
        let plain = try run("mi-pair", [file])
        #expect(pairs(plain).map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" } == ["a>b", "a>c"])
        let adjusted = try run("mi-pair", [file, "--length-adjust"])
        #expect(adjusted.status == 0, "\(adjusted.stderr)")
        let ps = pairs(adjusted)
        // Margins tie in exact arithmetic (0.06 in p1, 0.03 in p2), so rounding may order them either way.
        let made = ps.map { "\($0["chosen_id"]!)>\($0["rejected_id"]!)" }
        #expect(made.count == 4 && Set(made) == ["a>b", "c>b", "e>d", "e>f"], "\(made)")
        let expected: [String: Double] = ["a": 0.02, "b": -0.04, "c": 0.02, "d": -0.01, "e": 0.02, "f": -0.01]
        for p in ps {
            for side in ["chosen", "rejected"] {
                let value = p["\(side)_adjusted_influence"] as! Double, id = p["\(side)_id"] as! String
                #expect(abs(value - expected[id]!) < 1e-9, "\(id): \(value)")
            }
        }
        #expect(adjusted.stderr.contains("length fit over 6 candidates"))
        let v = try run("mi-validate", ["--schema", "pair"], stdin: adjusted.stdout)
        #expect(v.status == 0, "\(v.stderr)")
        let piped = try run("mi-pair", ["--length-adjust"], stdin: Array((lines.joined(separator: "\n") + "\n").utf8))
        #expect(piped.status == 64 && piped.stderr.contains("reads its input twice"), "\(piped.stderr)")
    }

    @Test func scatteredPromptsNeedSort() throws {
        let scattered = [record("a1", "p1", 0.3), record("b1", "p2", -0.2), record("a2", "p1", -0.1)].joined(separator: "\n") + "\n"
        let r = try run("mi-pair", [], stdin: Array(scattered.utf8))
        #expect(r.status == 65)
        #expect(r.stderr.contains("<stdin>:3") && r.stderr.contains("reappears"))
        let s = try run("mi-pair", ["--sort"], stdin: Array(scattered.utf8))
        #expect(s.status == 0)
        #expect(pairs(s).map { $0["chosen_id"] as? String } == ["a1"])
        let bad = try run("mi-pair", [], stdin: Array(#"{"prompt_id":"p","prompt":"x","raw":"y","influence":"high"}"#.utf8) + [0x0A])
        #expect(bad.status == 65)
        #expect(bad.stderr.contains("expected number, got string"))
    }

    /// --sort with a memory budget of a few records spills sorted runs and merges them: the pairs
    /// are those of the same records grouped by hand, and the runs are removed afterwards.
    @Test func sortSpillsRunsAndMergesThemInBoundedMemory() throws {
        // 60 prompts, each with a helpful and a harmful candidate, interleaved across the input.
        var scattered: [String] = [], grouped: [String] = []
        for p in 0..<60 { grouped += [record("h\(p)", "p\(p)", 0.1 + Double(p) / 1000), record("x\(p)", "p\(p)", -0.2)] }
        for p in 0..<60 { scattered.append(record("h\(p)", "p\(p)", 0.1 + Double(p) / 1000)) }
        for p in (0..<60).reversed() { scattered.append(record("x\(p)", "p\(p)", -0.2)) }
        // mi-pair --sort emits prompts in prompt_id order; group the reference input the same way.
        let order = (0..<60).sorted { "p\($0)" < "p\($1)" }
        let reference = order.flatMap { grouped[(2 * $0)...(2 * $0 + 1)] }.joined(separator: "\n") + "\n"
        let expected = try run("mi-pair", [], stdin: Array(reference.utf8))
        #expect(expected.status == 0, "\(expected.stderr)")
        #expect(pairs(expected).count == 60)

        let dir = TempDir()
        let input = Array((scattered.joined(separator: "\n") + "\n").utf8)
        let small = try run("mi-pair", ["--sort", "--sort-memory", "0.002", "--temp-dir", dir.path(""), "-v"], stdin: input)
        #expect(small.status == 0, "\(small.stderr)")
        #expect(small.stdout == expected.stdout)
        let runs = small.stderr.split(separator: "\n").first { $0.contains("sorted 120 records in") }
        #expect(runs != nil && !runs!.hasSuffix(" 1 runs"), "\(small.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("")).isEmpty)
        let large = try run("mi-pair", ["--sort"], stdin: input)
        #expect(large.stdout == expected.stdout)
    }
}

/// scripts/compare-scored.sh: two scorings of the same candidates joined by id.
@Suite struct CompareScoredTests {
    static let jq = ["/usr/bin/jq", "/usr/local/bin/jq"].contains { FileManager.default.isExecutableFile(atPath: $0) }

    /// B flips the residuals of prompt p2 around the same length line: every within-prompt raw
    /// order stays (the length term dominates) while p2's length-adjusted pairs reverse. B's one
    /// more record lies on the line (length 1, residual 0), so the fit is the same.
    @Test(.enabled(if: jq, "needs jq")) func agreementOfTwoScorings() throws {
        let ln10 = 2.302585092994046
        func file(_ name: String, _ residuals: [String: Double], extra: String = "", in dir: TempDir) -> String {
            let lines = [("a", "p1", 10), ("b", "p1", 100), ("c", "p1", 1000), ("d", "p2", 10), ("e", "p2", 100), ("f", "p2", 1000)].map {
                id, prompt, length in
                let influence = 0.05 - 0.02 * ln10 * Double(String(length).count - 1) + residuals[id]!
                return
                    #"{"id":"\#(id)","prompt_id":"\#(prompt)","prompt":"make a task","raw":"\#(id)","instruction":"\#(id)","response":"\#(String(repeating: "x", count: length))","influence":\#(influence)}"#
            }
            return dir.write(name, (lines + (extra.isEmpty ? [] : [extra])).joined(separator: "\n") + "\n")
        }
        let dir = TempDir()
        let a = file("a.jsonl", ["a": 0.02, "b": -0.04, "c": 0.02, "d": -0.01, "e": 0.02, "f": -0.01], in: dir)
        let b = file(
            "b.jsonl", ["a": 0.02, "b": -0.04, "c": 0.02, "d": 0.01, "e": -0.02, "f": 0.01],
            extra: #"{"id":"g","prompt_id":"p3","prompt":"p","raw":"g","instruction":"g","response":"x","influence":0.05}"#, in: dir)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [RunCLITests.repo.appendingPathComponent("scripts/compare-scored.sh").path, a, b]
        p.environment = ProcessInfo.processInfo.environment.merging(["MI_BIN_DIR": Executables.directory.path]) { _, new in new }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(errors)")
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(text)")
        #expect(lines.first?.hasPrefix("records in both: 6 (in one only: 1); influence Pearson r 0.") == true, "\(text)")
        #expect(lines.dropFirst().first == "within-prompt order: 6 of 6 pairs alike (1.000)", "\(text)")
        #expect(lines.last == "length-adjusted pairs: A 4, B 4; of A's, B makes 2 the same way and 2 reversed", "\(text)")
    }
}
