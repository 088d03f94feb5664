import MIRun
import MIStream
import Testing

/// The summary table's rows for the teacher update.
@Suite struct RunReportTests {
    /// The held-out pairs' row shows how far the DPO'd teacher moved on them: besides accuracy and
    /// margin, the log-probability shift of the chosen and of the rejected side (both falling is
    /// the sign of probability moving to text neither side holds).
    @Test func theHeldOutPairsRowShowsBothLogProbabilityShifts() throws {
        var round = RoundReport(round: 1)
        round.dpo = [
            ["stage": .string("dpo"), "step": .number(JSONNumber(1)), "loss": JSONNumber.value(0.6931)],
            [
                "stage": .string("dpo-heldout"), "pairs": .number(JSONNumber(19)), "accuracy": JSONNumber.value(0.6842),
                "reward_margin": JSONNumber.value(0.1202), "chosen_logp_shift": JSONNumber.value(-0.4434),
                "rejected_logp_shift": JSONNumber.value(-1.6458),
            ],
        ]
        var report = RunReport()
        report.rounds = [round]
        let row = try #require(report.markdown.split(separator: "\n").first { $0.contains("DPO held-out pairs") })
        #expect(row.contains("| 19, 0.684, 0.1202; -0.443 / -1.646 |"), "\(row)")
    }
}
