import ArgumentParser
import MICLI
import MICore
import MIRun
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-run",
        abstract: "Run the whole Montessori-Instruct loop from a YAML or JSON config, resumably, in one run directory.",
        discussion: """
            Warm up the student; then per round: generate, dedupe and answer a probing set; probe each \
            record's local data influence; pair; DPO the teacher; generate training sets with the \
            updated and the original teacher; train both students on as much data; evaluate them on \
            the held-out split. Every file stays in the run directory. Each step is fingerprinted by \
            its settings and the content of its inputs: a rerun skips finished steps, resumes an \
            interrupted one, and redoes a changed one with everything after it. The table goes to \
            stderr and RUN/summary.md; RUN/report.html (also after a failed or interrupted run) shows \
            the run as charts and tables (mi-report redraws it).
            """)

    @Option(help: "The run's configuration (YAML or JSON).") var config: String
    @Option(help: "Run directory (default: run_dir in the config, relative to the config file).") var runDir: String?
    @Option(
        name: .customLong("set"),
        help: ArgumentHelp("Override a config value, e.g. probing.generate.prompts=32 (repeatable).", valueName: "key=value"))
    var overrides: [String] = []
    @Flag(
        help:
            "Do not run: calibrate the tools on this machine (seconds each) and print every step's predicted work and wall time, and the total (stdout, markdown; kept in RUN/.mi-run/plan.json for the report)."
    ) var plan = false
    @Option(help: "Also write the run's plots (SVG: influence histograms, DPO loss, held-out loss differences) into this directory.")
    var plots: String?
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-run")
        Interrupts.install()
        // The tools it starts respect the setting; someone starting a long run at a terminal should
        // not pay for it unawares (scripts and logs get it from mi-bench and MI_LOG_LEVEL=debug).
        if isatty(2) != 0, let warning = BLASRuntime.weakerCoreWarning() { Log.warning(warning) }
        var started: String?
        // The page for whatever the run got to, finished or not.
        defer { if let started { writeReport(started) } }
        do {
            let settings = try RunConfig.load(path: config, overrides: overrides)
            guard let directory = runDir ?? settings.runDir else { throw ConfigError("\(config): no run_dir; give --run-dir") }
            let loop = try MontessoriRun(config: settings, directory: directory, quiet: common.quiet)
            if plan {
                let p = try loop.plan()
                try loop.writeText(JSONWriter.string(.object(p.json)) + "\n", to: ".mi-run/plan.json")
                let bytes = Array(p.markdown.utf8)
                try FileDescriptorSink(fd: 1, name: "<stdout>").write(bytes, count: bytes.count)
                return
            }
            try HTMLReport.recordConfig(path: config, overrides: overrides, in: directory)
            started = directory
            let report = try loop.run()
            let table = report.markdown
            try loop.writeText(table, to: "summary.md")
            if let plots { try MontessoriRun.writePlots(report, into: plots) }
            if !common.quiet {
                let bytes = Array(table.utf8)
                _ = write(2, bytes, bytes.count)
            }
            Log.info(
                "run directory \(directory): \(report.steps.ran) steps run, \(report.steps.resumed) resumed, \(report.steps.skipped) already done")
        } catch let e as ConfigError {
            Log.error(e.description)
            throw ExitCode(ExitStatus.config.rawValue)
        } catch let e as RunError {
            Log.error(e.description)
            throw ExitCode(e.exitStatus)
        } catch let e as StreamError {
            Log.error(e.description)
            if case .interrupted(2) = e { throw ExitCode(130) }
            throw ExitCode(e.exitStatus.rawValue)
        } catch let e as ExitCode {
            throw e
        } catch {
            Log.error("\(error)")
            throw ExitCode(ExitStatus.software.rawValue)
        }
    }

    func writeReport(_ directory: String) {
        do { try HTMLReport(directory: directory).write() } catch { Log.warning("\(directory)/report.html not written: \(error)") }
    }
}
