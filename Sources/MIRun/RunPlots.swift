extension RunReport {
    /// The run's plots, per round: the influence distribution of the probing set and of each
    /// teacher's fresh candidates; DPO loss per step (and the random-label control's); the held-out
    /// loss difference per record, sorted.
    public var plots: [(name: String, svg: String)] {
        var out: [(String, String)] = []
        for r in rounds {
            let p = "round-\(r.round)-"
            var sets: [(String, [Double])] = [("probing set (\(r.influences.count))", r.influences)]
            for label in ["original", "montessori", "control"] {
                if let v = r.experiment.fresh[label], !v.isEmpty { sets.append(("fresh, \(label) teacher (\(v.count))", v)) }
            }
            let all = sets.flatMap(\.1).filter(\.isFinite)
            if let low = all.min(), let high = all.max() {
                var chart = SVGChart(
                    title: "Round \(r.round): local data influence (> 0 helpful)", xLabel: "influence (nats per token)",
                    yLabel: "candidates per bin")
                for (name, values) in sets {
                    let counts = SVGChart.histogram(values, bins: 30, low: low, high: high)
                    chart.series.append(.init(name, SVGChart.steps(counts, low: low, high: high)))
                }
                out.append((p + "influence.svg", chart.svg))
            }
            var dpo = SVGChart(title: "Round \(r.round): DPO loss per step", xLabel: "optimizer step", yLabel: "DPO loss")
            for (name, metrics) in [("Montessori teacher", r.dpo), ("random-label control", r.experiment.controlDPO)] {
                let points = metrics.compactMap { m -> (x: Double, y: Double)? in
                    guard (try? m.string("stage")) == "dpo", let s = try? m.double("step"), let l = try? m.double("loss") else { return nil }
                    return (s, l)
                }
                if !points.isEmpty { dpo.series.append(.init(name, points)) }
            }
            if !dpo.series.isEmpty {
                dpo.rules = [0.6931]
                out.append((p + "dpo-loss.svg", dpo.svg))
            }
            if !r.montessoriLoss.isEmpty, r.montessoriLoss.count == r.baselineLoss.count {
                let d = zip(r.montessoriLoss, r.baselineLoss).map { $0 - $1 }.sorted()
                var chart = SVGChart(
                    title: "Round \(r.round): held-out loss, Montessori − baseline student, per record (< 0 Montessori better)",
                    xLabel: "held-out records, sorted", yLabel: "loss difference (nats per token)")
                chart.series = [.init("per record (\(d.count))", d.enumerated().map { (Double($0.offset + 1), $0.element) })]
                chart.rules = [0]
                out.append((p + "heldout-difference.svg", chart.svg))
            }
        }
        return out
    }
}
