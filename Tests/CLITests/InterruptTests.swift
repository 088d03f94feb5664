import Foundation
import Testing

/// Ctrl-C and SIGTERM in the middle of decoding: a line at once, a stop within a decoding step
/// (bounded here generously, for a loaded 2-core machine), and a last line with the command that
/// continues the run.
@Suite struct InterruptTests {
    /// Enough work for the tiny model to decode for many seconds.
    static let records =
        (0..<4000).map { #"{"id":"r\#($0)","instruction":"Tell a long story about the number \#($0)."}"# }
        .joined(separator: "\n") + "\n"

    func interrupt(_ signal: Int32) throws -> (reason: Process.TerminationReason, status: Int32, stderr: String, seconds: Double, dir: TempDir) {
        let dir = TempDir()
        let input = dir.write("in.jsonl", Self.records)
        let p = Process()
        p.executableURL = Executables.url("mi-respond")
        p.arguments = ["--teacher", SFTCLITests.tiny, "--max-tokens", "200", "--batch-size", "64", input, "-o", dir.path("out.jsonl")]
        let errors = Pipe()
        p.standardError = errors
        try p.run()
        // Decoding has begun once the first batch is in the partial output.
        let deadline = Date().addingTimeInterval(60)
        while dir.read("out.jsonl.partial").isEmpty && Date() < deadline { usleep(20_000) }
        let sent = Date()
        kill(p.processIdentifier, signal)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationReason, p.terminationStatus, stderr, Date().timeIntervalSince(sent), dir)
    }

    @Test func ctrlCStopsWithinAStepAndSaysHowToContinue() throws {
        let r = try interrupt(SIGINT)
        #expect(r.seconds < 10, "stopped \(r.seconds) s after SIGINT")
        // SIGINT is re-raised, so the shell sees 130 and a calling loop stops too.
        #expect(r.reason == .uncaughtSignal && r.status == SIGINT)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.contains { $0.hasPrefix("mi-respond: stopping: complete records are kept") }, "\(r.stderr)")
        let last = try #require(lines.last)
        #expect(last.contains("interrupted by signal 2; outputs left uncommitted; continue with: mi-respond --teacher "))
        #expect(last.hasSuffix("out.jsonl --resume"))
        // Only whole records were kept: every line of the partial parses and has a response.
        let kept = String(decoding: r.dir.read("out.jsonl.partial"), as: UTF8.self).split(separator: "\n")
        #expect(!kept.isEmpty && kept.count < 4000)
        for line in kept {
            let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(o?["response"] is String)
        }
    }

    @Test func sigtermExits75() throws {
        let r = try interrupt(SIGTERM)
        #expect(r.seconds < 10, "stopped \(r.seconds) s after SIGTERM")
        #expect(r.reason == .exit && r.status == 75, "\(r.stderr)")
        #expect(r.stderr.contains("interrupted by signal 15"))
    }
}
