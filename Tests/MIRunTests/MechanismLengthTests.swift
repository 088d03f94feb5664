import Foundation
import MIRun
import MIStream
import Testing

/// result.json's mechanism with what the answers' length explains taken out
/// (`length_adjusted_diff`), beside the raw difference of mean fresh influence.
@Suite struct MechanismLengthTests {
    /// The mechanism of a round whose fresh candidates have these influences and response lengths.
    func mechanism(original: [(Double, Int)], montessori: [(Double, Int)]) throws -> JSONObject {
        var round = RoundReport(round: 1)
        round.experiment.fresh = ["original": original.map(\.0), "montessori": montessori.map(\.0)]
        round.experiment.freshLength = ["original": original.map(\.1), "montessori": montessori.map(\.1)]
        return try round.resultJSON(seed: 1).object("mechanism")
    }

    func numbers(_ o: JSONObject, _ key: String) throws -> [Double] {
        try o.array(key).map { if case .number(let n) = $0 { n.double } else { .nan } }
    }

    /// Influence that is a line in ln(length) and nothing else: the teacher with the longer answers
    /// has the more influential candidates as they are, and not once length is taken out.
    @Test func whatLengthExplainsIsTakenOut() throws {
        let line = { (n: Int) in (-0.005 + 0.001 * log(Double(n)), n) }
        let m = try mechanism(original: [100, 150, 200, 300, 400].map(line), montessori: [300, 450, 600, 800, 1000].map(line))
        #expect(try m.double("diff") > 0.0008)
        #expect(abs(try m.double("length_adjusted_diff")) < 1e-15)
        let ci = try numbers(m, "length_adjusted_ci")
        #expect(ci.count == 2 && abs(ci[0]) < 1e-15 && abs(ci[1]) < 1e-15)
        #expect(try numbers(m, "response_chars") == [630, 230])
    }

    /// Answers alike in length and one teacher's candidates higher by δ at every length: the
    /// length-adjusted difference is δ, as the raw one is.
    @Test func aDifferenceAtTheSameLengthsStays() throws {
        let lengths = [120, 240, 360, 480, 960], delta = 0.0002
        let line = { (n: Int) in -0.002 + 0.0004 * log(Double(n)) }
        let m = try mechanism(original: lengths.map { (line($0), $0) }, montessori: lengths.map { (line($0) + delta, $0) })
        #expect(abs(try m.double("diff") - delta) < 1e-15)
        #expect(abs(try m.double("length_adjusted_diff") - delta) < 1e-15)
    }

    /// A run without response lengths (older scored files) reports the raw difference only.
    @Test func withoutLengthsOnlyTheRawDifference() throws {
        var round = RoundReport(round: 1)
        round.experiment.fresh = ["original": [0.001, 0.002], "montessori": [0.003, 0.001]]
        let m = try round.resultJSON(seed: 1).object("mechanism")
        #expect(m["diff"] != nil && m["length_adjusted_diff"] == nil && m["response_chars"] == nil)
    }
}
