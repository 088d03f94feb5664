import Foundation
import MIStages
import MIStream
import Testing

let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

/// Tokens and F-measures exactly as rouge-score computes them (Tests/Reference/make_rouge_fixtures.py).
/// Read with the project's JSON parser: its numbers are parsed correctly rounded, so equality is exact.
@Suite struct RougeLTests {
    let fixture: JSONObject = {
        let bytes = [UInt8](try! Data(contentsOf: fixtureDirectory.appendingPathComponent("rouge.json")))
        guard case let .object(o) = try! JSONParser().parse(bytes) else { fatalError("rouge.json is not an object") }
        return o
    }()

    func strings(_ v: JSONValue?) -> [String] {
        guard case let .array(a)? = v else { return [] }
        return a.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
    }

    @Test func tokensMatchRougeScore() throws {
        let cases = try fixture.array("tokens")
        #expect(cases.count > 20)
        for case let .object(t) in cases {
            let text = try t.string("text")
            #expect(RougeL.tokenize(text).map(String.init) == strings(t["tokens"]), "\(text)")
        }
    }

    @Test func fmeasuresMatchRougeScoreExactly() throws {
        let index = NearDuplicateIndex(threshold: 0.7)
        let pairs = try fixture.array("pairs")
        #expect(pairs.count > 300)
        for case let .object(p) in pairs {
            let target = try p.string("target"), prediction = try p.string("prediction"), expected = try p.double("fmeasure")
            let a = index.ids(RougeL.tokenize(target)), b = index.ids(RougeL.tokenize(prediction))
            let f = RougeL.fmeasure(lcs: RougeL.lcs(a, b), target: a.count, prediction: b.count)
            #expect(f == expected, "\(target) | \(prediction)")
        }
    }
}
