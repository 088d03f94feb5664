import Foundation
import MIRun
import MIStream
import Testing

/// experiment.selection: the training sets made of the pairs' chosen and rejected candidates, and
/// what result.json says of the two students.
@Suite struct SelectionCheckTests {
    func lines(_ objects: [[String: Any]]) throws -> String {
        try objects.map { String(decoding: try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]), as: UTF8.self) }
            .joined(separator: "\n") + "\n"
    }

    func read(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    func directory() throws -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("selection-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Each candidate once, in the scored file's order, with its fields untouched; one chosen in a
    /// pair and rejected in another in neither set; a random candidate of each paired prompt, the
    /// same for the same seed; all cut to the smallest.
    @Test func theSetsHoldEachSideOnceAndTheSameCount() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        // Prompts p0 (c0–c2), p1 (c3–c5) and p2 (c6–c8, no pairs).
        let scored = (0..<9).map { i -> [String: Any] in
            [
                "id": "c\(i)", "prompt_id": "p\(i / 3)", "instruction": "task \(i)", "response": String(repeating: "x", count: 10 * (i + 1)),
                "influence": Double(i), "extra": ["kept": i],
            ]
        }
        try lines(scored).write(toFile: d + "/scored.jsonl", atomically: true, encoding: .utf8)
        func pair(_ chosen: Int, _ rejected: Int) -> [String: Any] {
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c\(chosen)", "rejected_id": "c\(rejected)", "prompt_id": "p\(chosen / 3)"]
        }
        // c1 is chosen against c0 and rejected against c2: it goes into neither set.
        try lines([pair(2, 0), pair(2, 1), pair(1, 0), pair(5, 3), pair(5, 4)]).write(toFile: d + "/pairs.jsonl", atomically: true, encoding: .utf8)
        func sets(seed: UInt64) throws -> JSONObject {
            try MontessoriRun.selectionSets(
                scored: d + "/scored.jsonl", pairs: d + "/pairs.jsonl", chosen: d + "/chosen.jsonl", rejected: d + "/rejected.jsonl",
                random: d + "/random.jsonl", seed: seed)
        }
        let result = try sets(seed: 5)
        let chosen = try read(d + "/chosen.jsonl"), rejected = try read(d + "/rejected.jsonl")
        #expect(chosen.map { $0["id"] as! String } == ["c2", "c5"])
        #expect(rejected.map { $0["id"] as! String } == ["c0", "c3"], "c4 cut: two chosen")
        #expect((chosen[1]["extra"] as? [String: Any])?["kept"] as? Int == 5)
        #expect(try result.int("records") == 2 && result.int("in_both") == 1)
        #expect(try result.double("chosen_chars") == 45 && result.double("rejected_chars") == 25)
        let random = try read(d + "/random.jsonl").map { $0["id"] as! String }
        #expect(random.count == 2 && ["c0", "c1", "c2"].contains(random[0]) && ["c3", "c4", "c5"].contains(random[1]), "\(random)")
        _ = try sets(seed: 5)
        #expect(try read(d + "/random.jsonl").map { $0["id"] as! String } == random)
        var drawn = Set<String>()
        for seed in UInt64(0)..<20 {
            _ = try sets(seed: seed)
            drawn.formUnion(try read(d + "/random.jsonl").map { $0["id"] as! String })
        }
        #expect(drawn == ["c0", "c1", "c2", "c3", "c4", "c5"], "every candidate of a paired prompt can be drawn")
    }

    /// A pair naming a candidate the scored file does not have is an error that names it.
    @Test func aPairedCandidateMissingFromTheScoredFileIsAnError() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        try lines([["id": "c0", "response": "r", "influence": 0.1]]).write(toFile: d + "/scored.jsonl", atomically: true, encoding: .utf8)
        try lines([["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c0", "rejected_id": "c9"]])
            .write(toFile: d + "/pairs.jsonl", atomically: true, encoding: .utf8)
        #expect {
            try MontessoriRun.selectionSets(
                scored: d + "/scored.jsonl", pairs: d + "/pairs.jsonl", chosen: d + "/chosen.jsonl", rejected: d + "/rejected.jsonl",
                random: d + "/random.jsonl", seed: 5)
        } throws: { "\($0)".contains("not in") && "\($0)".contains("c9") }
        #expect(!FileManager.default.fileExists(atPath: d + "/chosen.jsonl"))
    }

    /// result.json's `selection`: chosen − rejected held-out loss, paired, records won by the
    /// chosen student, and the per-token difference with the held-out records' tokens.
    @Test func resultJSONReportsThePairedDifference() throws {
        var round = RoundReport(round: 1)
        round.heldoutTokens = [10, 30, 60]
        round.experiment.selection = try SelectionCheck(
            records: 40, chosenLoss: [2.0, 2.5, 3.0], rejectedLoss: [2.1, 2.4, 3.3], randomLoss: [2.2, 2.5, 3.1], responseChars: [400, 200, 300])
        let s = try round.resultJSON(seed: 3).object("selection")
        #expect(abs(try s.double("diff") - (-0.1 + 0.1 - 0.3) / 3) < 1e-12)
        #expect(try s.int("chosen_wins") == 2 && s.int("training_records") == 40 && s.int("records") == 3)
        let perToken = try s.object("token_weighted").double("diff")
        #expect(abs(perToken - (-0.1 * 10 + 0.1 * 30 - 0.3 * 60) / 100) < 1e-12)
        let random = try s.object("chosen_vs_random")
        #expect(abs(try random.double("diff") - (-0.2 + 0 - 0.1) / 3) < 1e-12)
        #expect(try random.int("chosen_wins") == 2)
        #expect(try s.array("response_chars").count == 3)
        #expect(RoundReport(round: 1).resultJSON(seed: 3)["selection"] == nil)
    }

    /// The three students must be scored on the same held-out records: differences paired across
    /// files of different lengths would compare unrelated records.
    @Test func lossesOfDifferentLengthsAreAnError() {
        #expect {
            try SelectionCheck(records: 4, chosenLoss: [2.0, 2.5], rejectedLoss: [2.1, 2.4], randomLoss: [2.2], responseChars: [1, 2, 3])
        } throws: { "\($0)".contains("2, 2 and 1 records") }
    }
}
