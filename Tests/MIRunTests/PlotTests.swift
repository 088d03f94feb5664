import Foundation
import MIRun
import Testing

/// The run's SVG plots: the numbers drawn are the run's own.
@Suite struct PlotTests {
    @Test func histogramCountsEveryValueOnce() {
        let values = [-0.003, -0.001, 0, 0.0005, 0.002, 0.002, 0.0131]
        let counts = SVGChart.histogram(values, bins: 30, low: -0.003, high: 0.0131)
        #expect(counts.reduce(0, +) == values.count, "the maximum falls in the last bin, the minimum in the first")
        #expect(counts.first == 1 && counts.last == 1)
        #expect(SVGChart.steps(counts, low: -0.003, high: 0.0131).count == 2 * counts.count + 2)
    }

    @Test func ticksAreRoundAndCoverTheRange() {
        #expect(SVGChart.ticks(0, 38) == [0, 10, 20, 30])
        #expect(SVGChart.ticks(-0.003, 0.0131) == [0, 0.005, 0.01])
        #expect(SVGChart.label(0.005) == "0.005" && SVGChart.label(-0.7) == "-0.7" && SVGChart.label(12000) == "1.2e4")
    }

    @Test func aReportDrawsOneChartPerMeasureWithItsPoints() {
        var round = RoundReport(round: 1)
        round.influences = [0.001, -0.002, 0.004]
        round.experiment.fresh = ["original": [0.001, 0.002], "montessori": [0.003]]
        round.montessoriLoss = [2.0, 2.1, 1.9]
        round.baselineLoss = [2.1, 2.0, 2.0]
        var report = RunReport()
        report.rounds = [round]
        let plots = report.plots
        #expect(plots.map(\.name) == ["round-1-influence.svg", "round-1-heldout-difference.svg"], "no DPO metrics: no DPO chart")
        let influence = plots[0].svg
        #expect(influence.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(influence.components(separatedBy: "<polyline class=\"series\"").count - 1 == 3, "probing set and two teachers")
        #expect(influence.contains("probing set (3)") && influence.contains("fresh, montessori teacher (1)"))
        let difference = plots[1].svg
        // Three sorted differences (−0.1, −0.1, 0.1), drawn as three points, with the zero rule.
        let points = difference.components(separatedBy: "points=\"")[1].split(separator: "\"")[0].split(separator: " ")
        #expect(points.count == 3)
        #expect(difference.contains("class=\"rule\""))
        #expect(difference.hasSuffix("</svg>\n"))
    }
}
