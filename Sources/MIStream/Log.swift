#if canImport(Glibc)
    import Glibc
#endif

/// Messages for people go to stderr; stdout carries data only.
/// The level comes from `--quiet`/`--verbose` or the MI_LOG_LEVEL environment variable.
public enum Log {
    public enum Level: Int, Comparable, Sendable {
        case debug = 0, info, warning, error, silent
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }

        public init?(name: String) {
            switch name.lowercased() {
            case "debug": self = .debug
            case "info": self = .info
            case "warning", "warn": self = .warning
            case "error": self = .error
            case "silent", "quiet": self = .silent
            default: return nil
            }
        }
    }

    nonisolated(unsafe) public static var level: Level = {
        if let v = getenv("MI_LOG_LEVEL"), let l = Level(name: String(cString: v)) { return l }
        return .info
    }()

    nonisolated(unsafe) public static var program: String = {
        let path = CommandLine.arguments.first ?? "mi"
        return path.split(separator: "/").last.map(String.init) ?? path
    }()

    public static func debug(_ message: @autoclosure () -> String) { emit(.debug, message) }
    public static func info(_ message: @autoclosure () -> String) { emit(.info, message) }
    public static func warning(_ message: @autoclosure () -> String) { emit(.warning, message) }
    public static func error(_ message: @autoclosure () -> String) { emit(.error, message) }

    private static func emit(_ l: Level, _ message: () -> String) {
        guard l >= level else { return }
        let prefix = l == .warning ? "warning: " : l == .error ? "error: " : l == .debug ? "debug: " : ""
        writeStderr("\(program): \(prefix)\(message())\n")
    }

    /// Best-effort write to stderr; a failure here must not hide the original problem.
    public static func writeStderr(_ text: String) {
        var t = text
        t.withUTF8 { buf in
            var done = 0
            while done < buf.count {
                let n = write(2, buf.baseAddress! + done, buf.count - done)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                done += n
            }
        }
    }
}
