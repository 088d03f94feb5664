import Foundation
import MIRun
import MIStages
import MIStream
import Testing

/// `montessori_set: chosen` and `influence`: one candidate per prompt by the log-probability
/// difference of two teachers or by influence, and what the first choice gains in influence over
/// each prompt's mean.
@Suite struct ImplicitRewardChoiceTests {
    func write(_ objects: [[String: Any]], _ path: String) throws {
        try objects.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            .joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
    }

    func ids(_ path: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String
        }
    }

    func directory() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("choice-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Prompts p0 (a0–a2), p1 (b0, b1) and p2 (c0), with influences and the two teachers' sums.
    static let candidates: [(id: String, prompt: String, influence: Double, original: Double, updated: Double)] = [
        ("a0", "p0", 0.1, -10, -12), ("a1", "p0", 0.4, -20, -15), ("a2", "p0", 0.7, -5, -4), // ratios −2, +5, +1
        ("b0", "p1", 0.2, -8, -7), ("b1", "p1", 0.6, -9, -8), // a tie (+1, +1): the first
        ("c0", "p2", 0.3, -3, -1),
    ]

    func files(_ d: String) throws -> (candidates: String, original: String, updated: String) {
        let c = Self.candidates
        try write(c.map { ["id": $0.id, "prompt_id": $0.prompt, "influence": $0.influence, "extra": [1, 2]] }, d + "/c.jsonl")
        try write(c.map { ["id": $0.id, "sum": $0.original] }, d + "/o.jsonl")
        try write(c.map { ["id": $0.id, "sum": $0.updated] }, d + "/u.jsonl")
        return (d + "/c.jsonl", d + "/o.jsonl", d + "/u.jsonl")
    }

    @Test func eachPromptKeepsItsLargestDifferenceOrItsFirst() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let f = try files(d)
        let chosen = try ImplicitRewardChoice.choose(
            candidates: f.candidates, rule: .logRatio(updated: f.updated, original: f.original), out: d + "/chosen.jsonl")
        #expect(try ids(d + "/chosen.jsonl") == ["a1", "b0", "c0"])
        #expect(chosen["not_first"] == .number(JSONNumber(1)))
        // The records pass through whole.
        #expect(try String(contentsOfFile: d + "/chosen.jsonl", encoding: .utf8).contains(#""extra":[1,2]"#))
        _ = try ImplicitRewardChoice.choose(candidates: f.candidates, rule: .first, out: d + "/first.jsonl")
        #expect(try ids(d + "/first.jsonl") == ["a0", "b0", "c0"])
        // By influence (montessori_set: influence): a2, b1, c0.
        _ = try ImplicitRewardChoice.choose(candidates: f.candidates, rule: .influence, out: d + "/influence.jsonl")
        #expect(try ids(d + "/influence.jsonl") == ["a2", "b1", "c0"])
        _ = try ImplicitRewardChoice.firstPrompts(f.candidates, out: d + "/two.jsonl", count: 2)
        #expect(try ids(d + "/two.jsonl") == ["a0", "a1", "a2", "b0", "b1"])
    }

    @Test func aCandidateWithoutAScoreIsAnError() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let f = try files(d)
        try write(Self.candidates.dropLast(2).map { ["id": $0.id, "sum": $0.updated] }, f.updated)
        #expect {
            try ImplicitRewardChoice.choose(candidates: f.candidates, rule: .logRatio(updated: f.updated, original: f.original), out: d + "/x.jsonl")
        } throws: {
            "\($0)".contains(f.updated) && "\($0)".contains("b1")
        }
        #expect(!FileManager.default.fileExists(atPath: d + "/x.jsonl"))
        try write([["id": "a0", "prompt_id": "p0", "influence": 0.1], ["id": "a1", "prompt_id": "p0"]], f.candidates)
        #expect { try ImplicitRewardChoice.choose(candidates: f.candidates, rule: .influence, out: d + "/x.jsonl") } throws: {
            "\($0)".contains(f.candidates) && "\($0)".contains("a1") && "\($0)".contains("influence")
        }
        #expect(!FileManager.default.fileExists(atPath: d + "/x.jsonl"))
    }

    /// Over p0 and p1 (p2 has one candidate): chosen a1 (0.4 against p0's mean 0.4) and b0 (0.2
    /// against 0.4); the best a2 (+0.3) and b1 (+0.2).
    @Test func theGainIsTheChosenCandidatesInfluenceOverItsPromptsMean() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let f = try files(d)
        let g = try #require(try ImplicitRewardChoice.gain(scored: f.candidates, updated: f.updated, original: f.original))
        #expect(g.prompts == 2)
        #expect(abs(g.chosen.mean - (0.0 + -0.2) / 2) < 1e-12)
        #expect(abs(g.best - (0.3 + 0.2) / 2) < 1e-12)
        #expect(g.chosen.low <= g.chosen.mean && g.chosen.mean <= g.chosen.high)
        // The first candidates a0 (−0.3) and b0 (−0.2); neither choice is its prompt's best.
        #expect(abs(g.first.mean - (-0.3 + -0.2) / 2) < 1e-12)
        #expect(g.sameAsBest == 0)
        // Chosen − first, paired: a1 − a0 = +0.3, b0 − b0 = 0.
        #expect(abs(g.chosenVsFirst.mean - 0.15) < 1e-12)
        // Spearman over all six: ratio ranks 1, 6, 3, 3, 3, 5 (three tied at +1) against influence
        // ranks 1, 4, 6, 2, 5, 3: Σ dx·dy 5.5, Σ dx² 15.5, Σ dy² 17.5.
        let rho = try #require(g.spearman)
        #expect(abs(rho.mean - 5.5 / (15.5 * 17.5).squareRoot()) < 1e-12)
        #expect(rho.low <= rho.mean && rho.mean <= rho.high && rho.low >= -1 && rho.high <= 1)
        #expect(g.lengthAdjusted == nil, "no responses, no length fit")
        // Where the updated teacher ranks a2 and b1 first, both choices are the best.
        try write(Self.candidates.map { ["id": $0.id, "sum": $0.original + ($0.id == "a2" || $0.id == "b1" ? 9 : 0)] }, f.updated)
        let best = try #require(try ImplicitRewardChoice.gain(scored: f.candidates, updated: f.updated, original: f.original))
        #expect(best.sameAsBest == 2 && abs(best.chosen.mean - best.best) < 1e-12)
    }

    /// With responses: the same gains with influence less its line on ln(characters), fitted over
    /// all six candidates (p2's single one too), recomputed here by the textbook formula.
    @Test func theLengthAdjustedGainTakesOutOneLineOverAllCandidates() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let f = try files(d)
        let lengths = ["a0": 10, "a1": 100, "a2": 40, "b0": 20, "b1": 25, "c0": 50]
        let records: [[String: Any]] = Self.candidates.map { c in
            let response = String(repeating: "é", count: lengths[c.id]!)
            return ["id": c.id, "prompt_id": c.prompt, "influence": c.influence, "response": response]
        }
        try write(records, f.candidates)
        let g = try #require(try ImplicitRewardChoice.gain(scored: f.candidates, updated: f.updated, original: f.original))
        let x: [Double] = Self.candidates.map { log(Double(lengths[$0.id]!)) }
        let y: [Double] = Self.candidates.map(\.influence)
        let mx: Double = x.reduce(0, +) / 6, my: Double = y.reduce(0, +) / 6
        var sxy = 0.0, sxx = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
        }
        let slope = sxy / sxx
        var residual: [String: Double] = [:]
        for (c, (a, b)) in zip(Self.candidates, zip(x, y)) { residual[c.id] = b - my - slope * (a - mx) }
        func centred(_ id: String, among ids: [String]) -> Double { residual[id]! - ids.map { residual[$0]! }.reduce(0, +) / Double(ids.count) }
        let p0 = ["a0", "a1", "a2"], p1 = ["b0", "b1"]
        let a = try #require(g.lengthAdjusted), n = a.characters
        // Chosen a1 and b0; first a0 and b0; best a2 and b1 (by raw influence).
        #expect(abs(a.chosen.mean - (centred("a1", among: p0) + centred("b0", among: p1)) / 2) < 1e-12)
        #expect(abs(a.first.mean - (centred("a0", among: p0) + centred("b0", among: p1)) / 2) < 1e-12)
        #expect(abs(a.best.mean - (centred("a2", among: p0) + centred("b1", among: p1)) / 2) < 1e-12)
        #expect(abs(a.chosenVsFirst.mean - (centred("a1", among: p0) - centred("a0", among: p0)) / 2) < 1e-12)
        #expect(n.chosen == 60 && n.first == 15 && n.best == 32.5, "characters, not UTF-8 bytes")
        // One candidate without a response, in a prompt with a choice or alone: no length fit, no error.
        for id in ["a0", "c0"] {
            try write(records.map { $0["id"] as? String == id ? $0.filter { $0.key != "response" } : $0 }, f.candidates)
            let without = try #require(try ImplicitRewardChoice.gain(scored: f.candidates, updated: f.updated, original: f.original))
            #expect(without.lengthAdjusted == nil && abs(without.chosen.mean - g.chosen.mean) < 1e-12, "\(id)")
        }
    }
}
