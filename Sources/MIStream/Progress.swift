#if canImport(Glibc)
    import Glibc
#endif

/// Progress on stderr: a live line with rate and ETA on a terminal, a plain line every
/// `interval` seconds otherwise (so logs of piped runs stay readable), nothing when quiet.
public final class Progress {
    public let label: String
    public let unit: String
    private let total: Int?
    private let live: Bool
    private let enabled: Bool
    private let interval: Double
    private let start: Double
    private var last: Double
    private var lastLength = 0

    /// - Parameter total: the amount the count is measured against (e.g. input bytes), if known.
    public init(label: String, unit: String = "records", total: Int? = nil, interval: Double? = nil) {
        self.label = label
        self.unit = unit
        self.total = total
        enabled = Log.level <= .info
        live = isatty(2) != 0
        self.interval = interval ?? (live ? 0.2 : 10)
        start = Progress.now()
        last = start
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    public var elapsed: Double { Progress.now() - start }

    /// Reports `count` items done; `position` is how far through `total` we are.
    public func update(count: Int, position: Int? = nil) {
        guard enabled else { return }
        let t = Progress.now()
        guard t - last >= interval else { return }
        last = t
        show(line(count: count, position: position, at: t))
    }

    /// The final summary line (always a full line).
    public func finish(_ summary: String) {
        guard enabled else { return }
        if live && lastLength > 0 { Log.writeStderr("\r" + String(repeating: " ", count: lastLength) + "\r") }
        lastLength = 0
        Log.writeStderr("\(Log.program): \(summary)\n")
    }

    private func line(count: Int, position: Int?, at t: Double) -> String {
        let secs = max(t - start, 1e-9)
        var s = "\(label): \(count) \(unit), \(Self.format(Double(count) / secs))/s"
        if let total, let position, total > 0, position > 0 {
            let frac = min(Double(position) / Double(total), 1)
            s += ", \(Double(Int(frac * 1000)) / 10)%"
            if frac > 0.001 { s += ", ETA " + Self.duration(secs / frac - secs) }
        }
        return s
    }

    private func show(_ s: String) {
        if live {
            let pad = max(0, lastLength - s.count)
            Log.writeStderr("\r\(s)" + String(repeating: " ", count: pad))
            lastLength = s.count
        } else {
            Log.writeStderr("\(s)\n") // the label already names the program
        }
    }

    static func format(_ rate: Double) -> String {
        rate >= 100 ? String(Int(rate.rounded())) : String(Double(Int(rate * 10)) / 10)
    }

    static func duration(_ s: Double) -> String {
        let total = Int(s.rounded())
        return total >= 3600 ? "\(total / 3600)h\(total % 3600 / 60)m" : total >= 60 ? "\(total / 60)m\(total % 60)s" : "\(total)s"
    }
}
