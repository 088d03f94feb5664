import ArgumentParser
import MICLI
import MIStages
import MIStream

struct DedupeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-dedupe",
        abstract: "Drop records whose instruction has ROUGE-L F above a threshold against an earlier kept record or a reference set.",
        discussion: """
            ROUGE-L is computed as Google's rouge-score does with use_stemmer=False; the kept records are \
            exactly those an all-pairs comparison keeps. Identical instructions (after that \
            tokenisation) are dropped too. Records stream through in order; each kept record is written \
            as soon as it is decided.
            """)

    @Argument(help: "Input JSONL files with an instruction field ('-' is stdin).")
    var inputs: [String] = ["-"]

    @Option(help: "Drop when ROUGE-L F is above this.")
    var threshold = 0.7

    @Option(help: "Reference records (e.g. the seed tasks) that candidates must not repeat.")
    var against: [String] = []

    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).")
    var out = "-"

    @Option(help: "Write every dropped record here, with the id it matched and the score.")
    var rejects: String?

    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if !(threshold >= 0 && threshold < 1) { throw ValidationError("--threshold must be in [0, 1)") }
    }

    func run() throws {
        common.apply(program: "mi-dedupe")
        try StageRunner.run {
            let dedupe = Dedupe(threshold: threshold)
            let policy = badRecords.policy()
            if !against.isEmpty {
                try dedupe.addAgainst(RecordReader(paths: against, options: badRecords.readOptions, badRecords: policy))
            }
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            let writer = try JSONLWriter(path: out, flushThreshold: out == "-" ? 1 : 1 << 20)
            let rejectWriter = try rejects.map { try JSONLWriter(path: $0) }
            let progress = Progress(label: "mi-dedupe")
            do {
                try dedupe.run(reader, out: writer, rejects: rejectWriter, progress: progress)
                try writer.commit()
                try rejectWriter?.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e {
                    writer.leavePartial()
                    rejectWriter?.leavePartial()
                } else if e != .brokenPipe {
                    writer.discard()
                    rejectWriter?.discard()
                }
                throw e
            }
            progress.finish(
                "\(dedupe.kept + dedupe.dropped) records: \(dedupe.kept) kept, \(dedupe.dropped) dropped"
                    + (against.isEmpty ? "" : " (\(dedupe.againstCount) reference records)") + "; \(dedupe.index.comparisons) LCS computations")
        }
    }
}
