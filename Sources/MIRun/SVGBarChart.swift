/// Horizontal bars as self-contained SVG text: one row per category, one bar per series in each
/// row (grouped), the value axis at the bottom. For counts per stage and wall time per step.
public struct SVGBarChart {
    public struct Series {
        public var name: String
        public var values: [Double]
        public init(_ name: String, _ values: [Double]) {
            self.name = name
            self.values = values
        }
    }

    public var title: String
    public var valueLabel: String
    public var categories: [String]
    public var series: [Series] = []
    public var width = 720.0

    public init(title: String, valueLabel: String, categories: [String]) {
        self.title = title
        self.valueLabel = valueLabel
        self.categories = categories
    }

    /// The chart as an SVG document; each bar a `rect` of class "bar" with its value in `data-value`.
    public var svg: String {
        let bar = 12.0, gap = 8.0, rowHeight = bar * Double(max(series.count, 1)) + gap
        let left = 260.0, right = 60.0, top = 40.0 + 16 * Double(series.count), bottom = 50.0
        let height = top + rowHeight * Double(categories.count) + bottom
        let pw = width - left - right
        let maximum = max(series.flatMap(\.values).filter(\.isFinite).max() ?? 1, 1e-12)
        let ticks = SVGChart.ticks(0, maximum)
        let x1 = max(maximum, ticks.last ?? maximum)
        func px(_ v: Double) -> Double { left + v / x1 * pw }
        func f(_ v: Double) -> String { SVGChart.trimmed(v, 1) }
        var out = SVGChart.opening(width: width, height: height, title: title)
        let axisY = height - bottom + 4
        out += "<line x1=\"\(f(left))\" y1=\"\(f(axisY))\" x2=\"\(f(left + pw))\" y2=\"\(f(axisY))\" stroke=\"#333\"/>\n"
        for t in ticks {
            out += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top - 4))\" x2=\"\(f(px(t)))\" y2=\"\(f(axisY + 5))\" stroke=\"#ddd\"/>"
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(axisY + 18))\" text-anchor=\"middle\">\(SVGChart.label(t))</text>\n"
        }
        out += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 10))\" text-anchor=\"middle\">\(SVGChart.escape(valueLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let color = SVGChart.colors[i % SVGChart.colors.count], ly = 40.0 + 16 * Double(i)
            out += "<rect x=\"\(f(left))\" y=\"\(f(ly - 9))\" width=\"12\" height=\"10\" fill=\"\(color)\"/>"
            out += "<text x=\"\(f(left + 18))\" y=\"\(f(ly))\">\(SVGChart.escape(s.name))</text>\n"
        }
        for (row, category) in categories.enumerated() {
            let y0 = top + Double(row) * rowHeight
            out +=
                "<text x=\"\(f(left - 8))\" y=\"\(f(y0 + (rowHeight - gap) / 2 + 4))\" text-anchor=\"end\">\(SVGChart.escape(category))</text>\n"
            for (i, s) in series.enumerated() where row < s.values.count && s.values[row].isFinite {
                let v = s.values[row], y = y0 + Double(i) * bar
                let color = SVGChart.colors[i % SVGChart.colors.count]
                out +=
                    "<rect class=\"bar\" data-value=\"\(SVGChart.trimmed(v, 6))\" x=\"\(f(left))\" y=\"\(f(y))\" width=\"\(f(max(px(v) - left, 0)))\" height=\"\(f(bar - 1))\" fill=\"\(color)\"/>"
                out += "<text x=\"\(f(px(v) + 4))\" y=\"\(f(y + bar - 2))\" font-size=\"10\">\(SVGChart.label(v))</text>\n"
            }
        }
        return out + "</svg>\n"
    }
}
