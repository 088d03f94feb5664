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
    /// pair and rejected in another in neither set; both sets cut to the smaller.
    @Test func theSetsHoldEachSideOnceAndTheSameCount() throws {
        let d = try directory()
        defer { try? FileManager.default.removeItem(atPath: d) }
        let scored = (0..<7).map { i -> [String: Any] in
            [
                "id": "c\(i)", "prompt_id": "p\(i / 3)", "instruction": "task \(i)", "response": String(repeating: "x", count: 10 * (i + 1)),
                "influence": Double(i), "extra": ["kept": i],
            ]
        }
        try lines(scored).write(toFile: d + "/scored.jsonl", atomically: true, encoding: .utf8)
        // c2 is chosen against c0 and rejected against c5: it goes into neither set.
        let pairs: [[String: Any]] = [
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c2", "rejected_id": "c0"],
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c5", "rejected_id": "c2"],
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c6", "rejected_id": "c3"],
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c6", "rejected_id": "c4"],
            ["prompt": "p", "chosen": "a", "rejected": "b", "chosen_id": "c5", "rejected_id": "c1"],
        ]
        try lines(pairs).write(toFile: d + "/pairs.jsonl", atomically: true, encoding: .utf8)
        let result = try MontessoriRun.selectionSets(
            scored: d + "/scored.jsonl", pairs: d + "/pairs.jsonl", chosen: d + "/chosen.jsonl", rejected: d + "/rejected.jsonl")
        let chosen = try read(d + "/chosen.jsonl"), rejected = try read(d + "/rejected.jsonl")
        #expect(chosen.map { $0["id"] as! String } == ["c5", "c6"])
        #expect(rejected.map { $0["id"] as! String } == ["c0", "c1"], "c3 and c4 cut: two chosen")
        #expect((chosen[0]["extra"] as? [String: Any])?["kept"] as? Int == 5)
        #expect(try result.int("records") == 2 && result.int("in_both") == 1)
        #expect(try result.double("chosen_chars") == 65 && result.double("rejected_chars") == 15)
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
                scored: d + "/scored.jsonl", pairs: d + "/pairs.jsonl", chosen: d + "/chosen.jsonl", rejected: d + "/rejected.jsonl")
        } throws: { "\($0)".contains("not in") && "\($0)".contains("c9") }
        #expect(!FileManager.default.fileExists(atPath: d + "/chosen.jsonl"))
    }

    /// result.json's `selection`: chosen − rejected held-out loss, paired, records won by the
    /// chosen student, and the per-token difference with the held-out records' tokens.
    @Test func resultJSONReportsThePairedDifference() throws {
        var round = RoundReport(round: 1)
        round.heldoutTokens = [10, 30, 60]
        round.experiment.selection = SelectionCheck(
            records: 40, chosenLoss: [2.0, 2.5, 3.0], rejectedLoss: [2.1, 2.4, 3.3], responseChars: (chosen: 400, rejected: 200))
        let s = try round.resultJSON(seed: 3).object("selection")
        #expect(abs(try s.double("diff") - (-0.1 + 0.1 - 0.3) / 3) < 1e-12)
        #expect(try s.int("chosen_wins") == 2 && s.int("training_records") == 40 && s.int("records") == 3)
        let perToken = try s.object("token_weighted").double("diff")
        #expect(abs(perToken - (-0.1 * 10 + 0.1 * 30 - 0.3 * 60) / 100) < 1e-12)
        #expect(round.resultJSON(seed: 3)["selection"] != nil)
        #expect(RoundReport(round: 1).resultJSON(seed: 3)["selection"] == nil)
    }
}
