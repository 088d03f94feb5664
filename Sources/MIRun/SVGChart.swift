#if canImport(Glibc)
    import Glibc
#endif

/// Small line charts as self-contained SVG text (no script, no external style): a frame with
/// ticked, labelled axes, one polyline per series, a legend. Enough for a run's plots; nothing here
/// depends on a plotting tool.
public struct SVGChart {
    public struct Series {
        /// A polyline through the points, a dot per point, or a bar per point (`x` its left edge,
        /// `width` wide in x units, from 0 to `y`).
        public enum Kind {
            case line
            case points
            case bars(width: Double)
        }

        public var name: String
        public var points: [(x: Double, y: Double)]
        public var kind = Kind.line
        /// Default: the chart's palette, by the series' position.
        public var color: String?
        public init(_ name: String, _ points: [(x: Double, y: Double)], kind: Kind = .line, color: String? = nil) {
            self.name = name
            self.points = points
            self.kind = kind
            self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    /// Horizontal reference lines (e.g. y = 0).
    public var rules: [Double] = []
    /// Vertical reference lines (e.g. x = 0).
    public var verticalRules: [Double] = []
    public var width = 720.0, height = 400.0

    public init(title: String, xLabel: String, yLabel: String) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
    }

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]

    /// Bin counts of `values` over `bins` equal bins of [low, high] (the last bin closed).
    public static func histogram(_ values: [Double], bins: Int, low: Double, high: Double) -> [Int] {
        var counts = [Int](repeating: 0, count: max(bins, 1))
        let w = (high - low) / Double(counts.count)
        for v in values where v.isFinite && v >= low && v <= high {
            counts[min(counts.count - 1, w > 0 ? Int((v - low) / w) : 0)] += 1
        }
        return counts
    }

    /// A histogram as a step outline: (bin start, count) … (bin end, count).
    public static func steps(_ counts: [Int], low: Double, high: Double) -> [(x: Double, y: Double)] {
        let w = (high - low) / Double(max(counts.count, 1))
        var points: [(x: Double, y: Double)] = [(low, 0)]
        for (i, c) in counts.enumerated() {
            points.append((low + Double(i) * w, Double(c)))
            points.append((low + Double(i + 1) * w, Double(c)))
        }
        points.append((high, 0))
        return points
    }

    /// About five round tick values covering [low, high].
    public static func ticks(_ low: Double, _ high: Double) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / 5
        let magnitude = Glibc.pow(10, Glibc.floor(Glibc.log10(raw)))
        let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = (low / step).rounded(.up) * step
        var out: [Double] = []
        while t <= high + step * 1e-9 {
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return out
    }

    public static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1000 || a < 0.001 {
            var e = 0, m = a
            while m >= 10 {
                m /= 10
                e += 1
            }
            while m < 1 {
                m *= 10
                e -= 1
            }
            return (v < 0 ? "-" : "") + trimmed(m, 2) + "e" + String(e)
        }
        return trimmed(v, a >= 100 ? 0 : a >= 1 ? 2 : 4)
    }

    static func trimmed(_ v: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var s = String(r)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;").replacingAll("\"", "&quot;")
    }

    /// An SVG document's opening: the root element, its title, a white background and the title drawn on top.
    static func opening(width: Double, height: Double, title: String) -> String {
        func f(_ v: Double) -> String { trimmed(v, 1) }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" \
            font-family="sans-serif" font-size="12">
            <title>\(escape(title))</title>
            <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="white"/>
            <text x="\(f(width / 2))" y="22" text-anchor="middle" font-size="14">\(escape(title))</text>

            """
    }

    /// The chart as an SVG document.
    public var svg: String {
        let all = series.flatMap(\.points)
        var xs = all.map(\.x) + verticalRules, ys = all.map(\.y) + rules
        for s in series {
            if case .bars(let w) = s.kind {
                xs += s.points.map { $0.x + w }
                ys.append(0)
            }
        }
        var x0 = xs.min() ?? 0, x1 = xs.max() ?? 1, y0 = ys.min() ?? 0, y1 = ys.max() ?? 1
        if x1 <= x0 { (x0, x1) = (x0 - 1, x0 + 1) }
        if y1 <= y0 { (y0, y1) = (y0 - 1, y0 + 1) }
        let pad = (y1 - y0) * 0.05
        y1 += pad
        if y0 != 0 { y0 -= pad }
        let left = 80.0, right = 20.0, top = 40.0, bottom = 60.0
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * ph }
        func f(_ v: Double) -> String { Self.trimmed(v, 1) }
        var out = Self.opening(width: width, height: height, title: title)
        out += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        for t in Self.ticks(x0, x1) {
            out += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top + ph))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph + 5))\" stroke=\"#333\"/>"
            out += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Self.ticks(y0, y1) {
            out += "<line x1=\"\(f(left - 5))\" y1=\"\(f(py(t)))\" x2=\"\(f(left))\" y2=\"\(f(py(t)))\" stroke=\"#333\"/>"
            out += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        out += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 15))\" text-anchor=\"middle\">\(Self.escape(xLabel))</text>\n"
        out += "<text transform=\"translate(18 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(Self.escape(yLabel))</text>\n"
        for r in rules {
            out +=
                "<line class=\"rule\" x1=\"\(f(left))\" y1=\"\(f(py(r)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(r)))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n"
        }
        for r in verticalRules {
            out +=
                "<line class=\"rule\" x1=\"\(f(px(r)))\" y1=\"\(f(top))\" x2=\"\(f(px(r)))\" y2=\"\(f(top + ph))\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n"
        }
        for (i, s) in series.enumerated() {
            let color = s.color ?? Self.colors[i % Self.colors.count]
            switch s.kind {
            case .line:
                let points = s.points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                out += "<polyline class=\"series\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
            case .points:
                out += "<g class=\"series\" fill=\"\(color)\" fill-opacity=\"0.6\">"
                for p in s.points { out += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\"/>" }
                out += "</g>\n"
            case .bars(let w):
                out += "<g class=\"series\" fill=\"\(color)\">"
                for p in s.points where p.y != 0 {
                    let yTop = py(max(p.y, 0)), yBottom = py(min(p.y, 0))
                    out +=
                        "<rect class=\"bar\" data-value=\"\(Self.trimmed(p.y, 6))\" x=\"\(f(px(p.x)))\" y=\"\(f(yTop))\" width=\"\(f(max(px(p.x + w) - px(p.x) - 0.5, 0.5)))\" height=\"\(f(yBottom - yTop))\"/>"
                }
                out += "</g>\n"
            }
            let ly = top + 16 + Double(i) * 16
            out +=
                "<line x1=\"\(f(left + pw - 250))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + pw - 230))\" y2=\"\(f(ly - 4))\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            out += "<text x=\"\(f(left + pw - 225))\" y=\"\(f(ly))\">\(Self.escape(s.name))</text>\n"
        }
        return out + "</svg>\n"
    }
}

extension String {
    fileprivate func replacingAll(_ a: String, _ b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
