import ArgumentParser
import MICLI
import MIRun
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-report",
        abstract: "Draw a run directory as one self-contained HTML page (inline SVG charts, no scripts, no network).",
        discussion: """
            Records per stage, influence histograms and influence against response length, DPO loss, \
            accuracy and reward margin per step, SFT loss per step, held-out loss differences per \
            record with their paired interval, wall time per step, the config, the step fingerprints \
            and links to every file. Reads only the directory's files, so a partial run gets a page \
            too; mi-run writes the same page to RUN/report.html after every run.
            """)

    @Argument(help: "The run directory.") var runDirectory: String
    @Option(name: .shortAndLong, help: "Output (default: RUN/report.html; '-' is stdout).") var out: String?
    @OptionGroup var common: CommonOptions

    struct NoRunDirectory: StageError {
        let path: String
        var exitStatus: ExitStatus { .noInput }
        var description: String { "\(path): not a run directory (no .mi-run/steps inside)" }
    }

    func run() throws {
        common.apply(program: "mi-report")
        try StageRunner.run {
            var st = stat()
            guard stat(runDirectory + "/.mi-run/steps", &st) == 0 else { throw NoRunDirectory(path: runDirectory) }
            let report = HTMLReport(directory: runDirectory)
            let target = out ?? runDirectory + "/report.html"
            if target == "-" {
                let bytes = Array(try report.html().utf8)
                try FileDescriptorSink(fd: 1, name: "<stdout>").write(bytes, count: bytes.count)
            } else {
                try MontessoriRun.writeFile(try report.html(), to: target)
                Log.info("wrote \(target)")
            }
        }
    }
}

CloseOut.install()
ReportCommand.main()
