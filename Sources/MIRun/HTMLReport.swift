import MIStages
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// A run directory as one self-contained page (`RUN/report.html`): the charts are inline SVG drawn
/// here, nothing is fetched and nothing runs a script. Everything comes from the directory's own
/// files (the step ledger, the JSONL outputs, the metrics), so a finished run, an interrupted one
/// and one that failed half-way all get a page with what exists so far. The markup is well-formed
/// XML, so any XML parser reads it.
public struct HTMLReport {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// One chart of the page: `id` is its SVG's `data-chart` attribute.
    public struct Chart {
        public let id: String
        public let caption: String
        public let svg: String
    }

    /// The page.
    public func html() throws -> String {
        let charts = try self.charts()
        var body = "<h1>Run \(escape(Files.basename(directory)))</h1>\n"
        body += try resultSection()
        body += try stageTable()
        for chart in charts {
            let tagged = chart.svg.replacingFirst("<svg ", with: "<svg data-chart=\"\(chart.id)\" ")
            body += "<figure id=\"\(chart.id)\">\n\(tagged)<figcaption>\(escape(chart.caption))</figcaption>\n</figure>\n"
        }
        body += configSection()
        body += stepTable()
        body += fileList()
        return """
            <!DOCTYPE html>
            <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
            <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>mi-run report: \(escape(Files.basename(directory)))</title>
            <style>
            body { font-family: sans-serif; max-width: 760px; margin: 1em auto; padding: 0 1em; color: #222; }
            figure { margin: 1.5em 0; } figure svg { max-width: 100%; height: auto; }
            figcaption { font-size: 0.9em; color: #555; }
            table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
            td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
            td.n { text-align: right; } pre { background: #f6f6f6; padding: 0.5em; overflow-x: auto; font-size: 0.8em; }
            code { font-size: 0.9em; }
            </style>
            </head>
            <body>
            \(body)</body>
            </html>

            """
    }

    /// Keeps what a run was started with (the config file's path and text, the overrides) in
    /// RUN/.mi-run/config.json, for the page's config section.
    public static func recordConfig(path: String, overrides: [String], in directory: String) throws {
        var o = JSONObject()
        o["path"] = .string(path)
        o["overrides"] = .array(overrides.map { .string($0) })
        o["text"] = .string(Files.read(path) ?? "")
        try MontessoriRun.writeFile(JSONWriter.string(.object(o)) + "\n", to: directory + "/.mi-run/config.json")
    }

    /// Writes `RUN/report.html` atomically.
    public func write() throws { try MontessoriRun.writeFile(try html(), to: path("report.html")) }

    // MARK: - Reading the directory

    func path(_ relative: String) -> String { directory + "/" + relative }
    func exists(_ relative: String) -> Bool { Files.exists(path(relative)) }

    func records(_ relative: String) throws -> [JSONObject] { try MontessoriRun.metrics(path(relative)) }

    func count(_ relative: String) throws -> Int? { exists(relative) ? try MontessoriRun.records(path(relative)) : nil }

    /// The rounds that have a directory, in order.
    var rounds: [Int] {
        Files.list(directory).compactMap { $0.hasPrefix("round-") ? Int($0.dropFirst(6)) : nil }.sorted()
    }

    /// The phases that synthesize data, as (label, file prefix, probed file, last column's file and name).
    func phases() -> [(label: String, prefix: String, probed: String?, final: (file: String, name: String)?)] {
        var out: [(String, String, String?, (String, String)?)] = [("warm-up", "warmup/", nil, nil)]
        for r in rounds {
            let rd = "round-\(r)/"
            out.append(("round \(r): probing set", rd + "probe-", rd + "scored.jsonl.gz", (rd + "pairs.jsonl.gz", "pairs")))
            for label in ["original", "montessori", "control"] {
                out.append(("round \(r): fresh, \(label) teacher", rd + "mechanism-\(label)-", rd + "mechanism-\(label)-scored.jsonl.gz", nil))
            }
            for (label, name) in RoundReport.crossings {
                out.append(("round \(r): fresh, \(name)", rd + "mechanism-\(label)-", rd + "mechanism-\(label)-scored.jsonl.gz", nil))
            }
            // montessori_set: influence: the original teacher's training candidates, all answered and probed.
            out.append(("round \(r): training candidates, all probed", rd + "choose-", rd + "choose-scored.jsonl.gz", nil))
            for label in ["montessori", "baseline", "control"] {
                out.append(("round \(r): training set, \(label)", rd + "\(label)-", nil, (rd + "train-\(label).jsonl.gz", "trained")))
            }
        }
        return out
    }

    /// Records per stage: generated, kept after dedupe, answered, probed, and pairs (probing set)
    /// or records trained on (training sets); nil where the file does not exist (yet).
    func stageCounts() throws -> [(label: String, counts: [Int?])] {
        var out: [(String, [Int?])] = []
        for p in phases() {
            let counts: [Int?] = [
                try count(p.prefix + "instructions.jsonl.gz"), try count(p.prefix + "deduped.jsonl.gz"),
                try count(p.prefix + "answered.jsonl.gz"), try p.probed.flatMap(count),
                try p.final?.file == nil ? nil : count(p.final!.file),
            ]
            if counts.contains(where: { $0 != nil }) { out.append((p.label, counts)) }
        }
        return out
    }

    static let stageColumns = ["generated", "kept after dedupe", "answered", "probed", "pairs / trained"]

    // MARK: - Charts

    public func charts() throws -> [Chart] {
        var out: [Chart] = []
        let stages = try stageCounts()
        if !stages.isEmpty {
            var chart = SVGBarChart(title: "Records per stage", valueLabel: "records", categories: stages.map(\.label))
            for (i, name) in Self.stageColumns.enumerated() {
                chart.series.append(.init(name, stages.map { $0.counts[i].map(Double.init) ?? .nan }))
            }
            out.append(Chart(id: "stages", caption: "Records at each stage of each phase, from the files' line counts.", svg: chart.svg))
        }
        for r in rounds { out += try roundCharts(r) }
        if let sft = try sftChart() { out.append(sft) }
        if let time = try wallTimeChart() { out.append(time) }
        return out
    }

    func roundCharts(_ r: Int) throws -> [Chart] {
        let rd = "round-\(r)/"
        var out: [Chart] = []
        let scored = try records(rd + "scored.jsonl.gz")
        let influence = scored.compactMap { try? $0.double("influence") }.filter(\.isFinite)
        if let histogram = Self.influenceHistogram(influence, title: "Round \(r): local data influence of the probing set") {
            let helpful = influence.filter { $0 > 0 }.count, harmful = influence.filter { $0 < 0 }.count
            out.append(
                Chart(
                    id: "influence-round-\(r)",
                    caption:
                        "\(influence.count) probed candidates: \(helpful) helpful (> 0, the step lowered the reference loss), \(harmful) harmful. Bins are aligned on 0.",
                    svg: histogram))
            out.append(Chart(id: "influence-length-round-\(r)", caption: scatterCaption(scored), svg: Self.influenceScatter(scored, round: r)))
        }
        let candidates = try records(rd + "choose-scored.jsonl.gz").compactMap { try? $0.double("influence") }.filter(\.isFinite)
        if let histogram = Self.influenceHistogram(candidates, title: "Round \(r): local data influence of the training candidates") {
            out.append(
                Chart(
                    id: "influence-candidates-round-\(r)",
                    caption:
                        "\(candidates.count) of the original teacher's training candidates, probed on the same student as the probing set: "
                        + "\(candidates.filter { $0 > 0 }.count) helpful. The Montessori set keeps each prompt's most influential.",
                    svg: histogram))
        }
        var fresh = SVGChart(
            title: "Round \(r): influence of fresh candidates per teacher", xLabel: "influence (nats per token)", yLabel: "candidates per bin")
        var sets: [(String, [Double])] = []
        for label in ["original", "montessori", "control"] {
            let v = try records(rd + "mechanism-\(label)-scored.jsonl.gz").compactMap { try? $0.double("influence") }.filter(\.isFinite)
            if !v.isEmpty { sets.append(("\(label) teacher (\(v.count))", v)) }
        }
        if let low = sets.flatMap(\.1).min(), let high = sets.flatMap(\.1).max() {
            for (name, v) in sets {
                fresh.series.append(.init(name, SVGChart.steps(SVGChart.histogram(v, bins: 30, low: low, high: high), low: low, high: high)))
            }
            fresh.verticalRules = [0]
            let means = sets.map { "\($0.0): mean \(SVGChart.label($0.1.reduce(0, +) / Double($0.1.count)))" }.joined(separator: "; ")
            out.append(Chart(id: "fresh-round-\(r)", caption: "Same prompts and sampling seeds for every teacher. " + means + ".", svg: fresh.svg))
        }
        out += try dpoCharts(r)
        if let heldout = try heldoutChart(r) { out.append(heldout) }
        return out
    }

    /// Bars of `values` in about 30 bins aligned so that 0 is a bin edge: harmful bins (left of 0)
    /// red, helpful ones green. The bars' `data-value`s sum to the number of values.
    static func influenceHistogram(_ values: [Double], title: String) -> String? {
        guard let low = values.min(), let high = values.max() else { return nil }
        let width = high > low ? (high - low) / 30 : max(abs(low), 1e-9) / 10
        let start = (low / width).rounded(.down) * width
        let bins = max(1, Int(((high - start) / width).rounded(.up)) + 1)
        var counts = [Int](repeating: 0, count: bins)
        for v in values { counts[min(bins - 1, max(0, Int(((v - start) / width).rounded(.down))))] += 1 }
        var harmful: [(x: Double, y: Double)] = [], helpful: [(x: Double, y: Double)] = []
        for (i, c) in counts.enumerated() where c > 0 {
            let left = start + Double(i) * width
            if left < -width * 1e-9 { harmful.append((left, Double(c))) } else { helpful.append((left, Double(c))) }
        }
        var chart = SVGChart(title: title, xLabel: "influence (nats per token; > 0 helpful)", yLabel: "candidates per bin")
        chart.series = [
            .init("harmful (< 0)", harmful, kind: .bars(width: width), color: "#d62728"),
            .init("helpful (≥ 0)", helpful, kind: .bars(width: width), color: "#2ca02c"),
        ]
        return chart.svg
    }

    static func influenceScatter(_ scored: [JSONObject], round r: Int) -> String {
        var helpful: [(x: Double, y: Double)] = [], harmful: [(x: Double, y: Double)] = [], cut: [(x: Double, y: Double)] = []
        for o in scored {
            guard let v = try? o.double("influence"), v.isFinite, let response = try? o.string("response") else { continue }
            let p = (x: Double(Pairing.characters(response)), y: v)
            if (try? o.bool("truncated")) == true { cut.append(p) } else if v > 0 { helpful.append(p) } else { harmful.append(p) }
        }
        var chart = SVGChart(
            title: "Round \(r): influence against response length", xLabel: "response length (characters)",
            yLabel: "influence (nats per token)")
        chart.series = [
            .init("helpful (\(helpful.count))", helpful, kind: .points, color: "#2ca02c"),
            .init("harmful (\(harmful.count))", harmful, kind: .points, color: "#d62728"),
            .init("cut at the token limit (\(cut.count))", cut, kind: .points, color: "#7f7f7f"),
        ]
        chart.rules = [0]
        return chart.svg
    }

    func scatterCaption(_ scored: [JSONObject]) -> String {
        let pairs = scored.compactMap { o -> (Double, Double)? in
            guard let v = try? o.double("influence"), v.isFinite, let s = try? o.string("response") else { return nil }
            return (Double(Pairing.characters(s)), v)
        }
        guard let r = Self.pearson(pairs) else { return "One dot per probed candidate." }
        return "One dot per probed candidate; Pearson correlation of length and influence \(SVGChart.trimmed(r, 2))."
    }

    static func pearson(_ xy: [(Double, Double)]) -> Double? {
        xy.count > 2 ? Evaluation.pearson(xy.map(\.0), xy.map(\.1)) : nil
    }

    func dpoCharts(_ r: Int) throws -> [Chart] {
        let rd = "round-\(r)/"
        let runs = [
            ("Montessori teacher", try records(rd + "dpo-metrics.jsonl")), ("random-label control", try records(rd + "dpo-control-metrics.jsonl")),
        ]
        let steps = runs.map { ($0.0, $0.1.filter { (try? $0.string("stage")) != "dpo-heldout" }) }.filter { !$0.1.isEmpty }
        guard !steps.isEmpty else { return [] }
        var out: [Chart] = []
        for (field, label, rule) in [
            ("loss", "DPO loss", 0.6931), ("accuracy", "accuracy (chosen reward > rejected)", 0.5),
            ("reward_margin", "reward margin (β · log-ratio)", 0),
        ] {
            var chart = SVGChart(title: "Round \(r): DPO \(field.replacingFirst("_", with: " ")) per step", xLabel: "optimizer step", yLabel: label)
            for (name, metrics) in steps {
                let points = metrics.compactMap { m -> (x: Double, y: Double)? in
                    guard let s = try? m.double("step"), let v = try? m.double(field) else { return nil }
                    return (s, v)
                }
                if !points.isEmpty { chart.series.append(.init(name, points)) }
            }
            guard !chart.series.isEmpty else { continue }
            chart.rules = [rule]
            var caption = "Per optimizer step, on the step's batch of training pairs."
            for (name, metrics) in runs {
                if let h = metrics.last(where: { (try? $0.string("stage")) == "dpo-heldout" }), let v = try? h.double(field) {
                    caption += " \(name) on its held-out pairs: \(SVGChart.label(v))."
                }
            }
            out.append(Chart(id: "dpo-\(field.replacingFirst("_", with: "-"))-round-\(r)", caption: caption, svg: chart.svg))
        }
        return out
    }

    func heldoutChart(_ r: Int) throws -> Chart? {
        let eval = try records("round-\(r)/eval.jsonl")
        let d = eval.compactMap { o -> Double? in
            guard let a = try? o.double("loss"), let b = try? o.double("loss_against") else { return nil }
            return a - b
        }
        guard !d.isEmpty else { return nil }
        let ci = Evaluation.bootstrap(d)
        var chart = SVGChart(
            title: "Round \(r): held-out loss, Montessori − baseline student, per record", xLabel: "held-out records, sorted",
            yLabel: "loss difference (nats per token)")
        chart.series = [.init("per record (\(d.count))", d.sorted().enumerated().map { (Double($0.offset + 1), $0.element) })]
        chart.rules = [0, ci.low, ci.high]
        let f = { (x: Double) in SVGChart.trimmed(x, 4) }
        return Chart(
            id: "heldout-round-\(r)",
            caption:
                "Below 0 the Montessori student is better on that record. Mean \(f(ci.mean)), paired bootstrap 95 % interval \(f(ci.low)) to \(f(ci.high)) (dashed lines); lower on \(d.filter { $0 < 0 }.count) of \(d.count) records.",
            svg: chart.svg)
    }

    func sftChart() throws -> Chart? {
        var chart = SVGChart(title: "SFT loss per step", xLabel: "optimizer step", yLabel: "training loss (nats per token)")
        var files = [("warm-up student", "warmup/student-metrics.jsonl")]
        for r in rounds {
            for label in ["montessori", "baseline", "control"] {
                files.append(("round \(r): \(label) student", "round-\(r)/student-\(label)-metrics.jsonl"))
            }
        }
        for (name, file) in files {
            let points = try records(file).compactMap { m -> (x: Double, y: Double)? in
                guard let s = try? m.double("step"), let l = try? m.double("loss") else { return nil }
                return (s, l)
            }
            if !points.isEmpty { chart.series.append(.init(name, points)) }
        }
        guard !chart.series.isEmpty else { return nil }
        return Chart(id: "sft-loss", caption: "Loss of each optimizer step's batch.", svg: chart.svg)
    }

    /// The step ledger's entries: finished ones in the order they finished (within one second,
    /// in the plan's order when there is a plan), then the others.
    func ledger() throws -> [JSONObject] {
        let dir = ".mi-run/steps/"
        let entries = try Files.list(path(dir)).filter { $0.hasSuffix(".json") }.flatMap { try records(dir + $0) }
        let order = try planOrder()
        func key(_ e: JSONObject) -> (Double, Int, String) {
            let name = (try? e.string("step")) ?? ""
            return ((try? e.double("finished_unix")) ?? .infinity, order[name] ?? Int.max, name)
        }
        return entries.sorted { key($0) < key($1) }
    }

    func wallTimeChart() throws -> Chart? {
        let timed = try ledger().compactMap { e -> (String, Double)? in
            guard let s = try? e.string("step"), let t = try? e.double("seconds") else { return nil }
            return (s, t)
        }
        guard !timed.isEmpty else { return nil }
        let total = timed.map(\.1).reduce(0, +)
        let minutes = total > 600
        var chart = SVGBarChart(title: "Wall time per step", valueLabel: minutes ? "minutes" : "seconds", categories: timed.map(\.0))
        chart.series = [.init("measured (the attempt that finished the step)", timed.map { minutes ? $0.1 / 60 : $0.1 })]
        var caption =
            "From the step ledger (RUN/.mi-run/steps); \(timed.count) steps, \(SVGChart.trimmed(total / 60, 1)) minutes in all. A resumed step counts only its last attempt."
        let predicted = try plan()
        if !predicted.isEmpty {
            chart.series.append(.init("predicted by mi-run --plan", timed.map { predicted[$0.0].map { minutes ? $0 / 60 : $0 } ?? .nan }))
            let sum = predicted.values.reduce(0, +)
            caption +=
                " Predicted before the run: \(SVGChart.trimmed(sum / 60, 1)) minutes (measured / predicted \(SVGChart.trimmed(total / sum, 2)))."
        }
        return Chart(id: "wall-time", caption: caption, svg: chart.svg)
    }

    /// The steps of RUN/.mi-run/plan.json (`mi-run --plan`), if there is one.
    func planSteps() throws -> [(step: String, seconds: Double)] {
        guard let o = try records(".mi-run/plan.json").first, case .array(let steps)? = o["steps"] else { return [] }
        return steps.compactMap { v -> (String, Double)? in
            guard case .object(let s) = v, let name = try? s.string("step"), let seconds = try? s.double("seconds") else { return nil }
            return (name, seconds)
        }
    }

    /// Predicted seconds per step.
    func plan() throws -> [String: Double] { Dictionary(try planSteps().map { ($0.step, $0.seconds) }, uniquingKeysWith: { a, _ in a }) }

    func planOrder() throws -> [String: Int] {
        Dictionary(try planSteps().enumerated().map { ($0.element.step, $0.offset) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: - Tables

    func resultSection() throws -> String {
        guard let result = try records("result.json").first else { return "" }
        var rows: [(String, String)] = []
        func add(_ label: String, _ v: JSONValue?) { if let v, v != .null { rows.append((label, JSONWriter.string(v))) } }
        if let o = try? result.object("outcome") {
            add("outcome: held-out loss, Montessori − baseline", o["diff"])
            add("outcome: 95 % interval", o["ci"])
        }
        if let m = try? result.object("mechanism") {
            add("mechanism: mean fresh influence, Montessori − original", m["diff"])
            add("mechanism: 95 % interval", m["ci"])
        }
        if let split = try? result.object("mechanism_split") {
            for (key, name) in [("instructions", "the Montessori teacher's instructions"), ("answers", "the Montessori teacher's answers")] {
                guard let part = try? split.object(key) else { continue }
                add("mechanism from \(name)", part["diff"])
                add("mechanism from \(name): 95 % interval", part["ci"])
            }
        }
        if let c = try? result.object("control") {
            add("control: mean fresh influence, random-label − original", c["diff"])
            add("control: 95 % interval", c["ci"])
        }
        if let start = try? result.object("students_vs_start") {
            add("held-out loss of the model the students started from", start["start_loss"])
            for label in ["baseline", "montessori", "control"] {
                guard let d = try? start.object(label) else { continue }
                add("\(label) student − its start", d["diff"])
                add("\(label) student − its start: 95 % interval", d["ci"])
            }
        }
        for (key, candidates) in [("mechanism_chosen", "fresh"), ("training_choice", "training")] {
            guard let all = try? result.object(key) else { continue }
            for member in all.members.sorted(by: { $0.key < $1.key }) {
                guard case let .object(g) = member.value else { continue }
                let name = "\(member.key) teacher's choice of the original's \(candidates) candidates"
                add("\(name): influence − prompt mean", g["diff"])
                add("\(name): 95 % interval", g["ci"])
                if case let .object(first)? = g["first"] { add("\(name): the first candidate's, for comparison", first["diff"]) }
                if case let .object(d)? = g["chosen_vs_first"] {
                    add("\(name): chosen − first, paired", d["diff"])
                    add("\(name): chosen − first, 95 % interval", d["ci"])
                }
                add("\(name): the most influential's", g["best"])
                add("\(name): prompts; of them, where it is the most influential", g["prompts"].map { p in .array([p, g["same_as_best"] ?? .null]) })
                if case let .object(a)? = g["length_adjusted"], case let .object(d)? = a["chosen_vs_first"] {
                    add("\(name), length taken out: chosen − first", d["diff"])
                    add("\(name), length taken out: chosen − first, 95 % interval", d["ci"])
                }
            }
        }
        if let t = try? result.object("teacher") { add("teacher: held-out pair accuracy", t["heldout_pair_accuracy"]) }
        guard !rows.isEmpty else { return "" }
        return "<h2>Result</h2>\n<p>From <a href=\"result.json\">result.json</a>.</p>\n" + table(["measure", "value"], rows.map { [$0.0, $0.1] })
    }

    func stageTable() throws -> String {
        let stages = try stageCounts()
        guard !stages.isEmpty else { return "<p>No data yet.</p>\n" }
        return "<h2>Records per stage</h2>\n"
            + table(["phase"] + Self.stageColumns, stages.map { [$0.label] + $0.counts.map { $0.map(String.init) ?? "–" } }, numeric: true)
    }

    func configSection() -> String {
        guard let o = try? records(".mi-run/config.json").first else { return "" }
        var out = "<h2>Config</h2>\n"
        if let file = try? o.string("path") { out += "<p>File: <code>\(escape(file))</code></p>\n" }
        if case .array(let overrides)? = o["overrides"], !overrides.isEmpty {
            out += "<p>Overrides: " + overrides.map { "<code>--set \(escape(JSONWriter.string($0)))</code>" }.joined(separator: " ") + "</p>\n"
        }
        if let t = try? o.string("text") { out += "<pre>\(escape(t))</pre>\n" }
        return out
    }

    func stepTable() -> String {
        guard let entries = try? ledger(), !entries.isEmpty else { return "" }
        let rows = entries.map { e -> [String] in
            [
                (try? e.string("step")) ?? "?", (try? e.string("status")) ?? "?",
                (try? e.double("seconds")).map { SVGChart.trimmed($0, 1) } ?? "",
                String(((try? e.string("fingerprint")) ?? "").prefix(16)),
                e["result"].map { JSONWriter.string($0) } ?? "",
            ]
        }
        return "<h2>Steps</h2>\n<p>Fingerprints (first 16 hex digits) cover each step's settings and the content of its inputs.</p>\n"
            + table(["step", "status", "seconds", "fingerprint", "result"], rows)
    }

    func fileList() -> String {
        var rows: [[String]] = []
        func walk(_ relative: String) {
            for name in Files.list(relative.isEmpty ? directory : path(relative)) {
                let rel = relative.isEmpty ? name : relative + "/" + name
                guard !name.hasPrefix("."), rel != "report.html", let info = Files.info(path(rel)) else { continue }
                if info.isDirectory { walk(rel) } else { rows.append([rel, String(info.size)]) }
            }
        }
        walk("")
        guard !rows.isEmpty else { return "" }
        var out = "<h2>Files</h2>\n<table>\n<tr><th>file</th><th>bytes</th></tr>\n"
        for r in rows { out += "<tr><td><a href=\"\(escape(r[0]))\">\(escape(r[0]))</a></td><td class=\"n\">\(r[1])</td></tr>\n" }
        return out + "</table>\n"
    }

    func table(_ header: [String], _ rows: [[String]], numeric: Bool = false) -> String {
        var out = "<table>\n<tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for r in rows {
            out += "<tr>" + r.enumerated().map { i, c in (numeric && i > 0 ? "<td class=\"n\">" : "<td>") + escape(c) + "</td>" }.joined() + "</tr>\n"
        }
        return out + "</table>\n"
    }

    func escape(_ s: String) -> String { SVGChart.escape(s) }
}

extension String {
    func replacingFirst(_ a: String, with b: String) -> String {
        guard let r = firstRange(of: a) else { return self }
        var s = self
        s.replaceSubrange(r, with: b)
        return s
    }
}
