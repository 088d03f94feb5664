import ArgumentParser
import MICLI
import MIStages
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

extension Pairing.Mode: ExpressibleByArgument {}

struct PairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-pair",
        abstract: "Turn scored candidates into DPO pairs: chosen influence > 0 > rejected influence, per prompt.",
        discussion: """
            Records of a prompt must be consecutive (as mi-generate writes them); a prompt_id that \
            reappears later is an error unless --sort, which first sorts the input by prompt_id with \
            bounded memory (runs of --sort-memory MiB spilled to --temp-dir and merged); prompts are \
            then emitted in prompt_id order.
            """)

    @Argument(help: "Scored records ('-' is stdin).") var inputs: [String] = ["-"]
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).") var out = "-"
    @Option(
        help:
            "all: every chosen (influence > 0) × rejected (< 0) combination; best-worst: the best chosen against the worst rejected; rank: the most against the least influential candidate of a prompt, whatever their signs."
    ) var mode = Pairing.Mode.all
    @Option(help: "Keep pairs whose influence margin is at least this.") var minMargin = 0.0
    @Option(help: "At most this many pairs per prompt, largest margins first (0: all).") var maxPairsPerPrompt = 0
    @Option(
        help:
            "Pair only candidates whose responses are of similar length: the longer at most this many times the shorter, in characters (0: any lengths). best-worst and rank then take the widest margin among such pairs."
    ) var maxLengthRatio = 0.0
    @Flag(
        help:
            "Compare candidates by influence less what their response length predicts (a least-squares line on ln(characters) fitted over the whole input, read twice: files only)."
    ) var lengthAdjust = false
    @Flag(help: "Sort records by prompt_id first (for input whose prompts are not consecutive).") var sort = false
    @Option(help: "With --sort: MiB of records held in memory before a sorted run is spilled to disk.") var sortMemory = 256.0
    @Option(help: "With --sort: where spilled runs go (default: $TMPDIR or /tmp).") var tempDir: String?
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if !(sortMemory > 0) { throw ValidationError("--sort-memory must be > 0") }
        if !(maxLengthRatio == 0 || maxLengthRatio >= 1) { throw ValidationError("--max-length-ratio must be 0 (off) or at least 1") }
        if lengthAdjust && inputs.contains("-") { throw ValidationError("--length-adjust reads its input twice: give files, not '-'") }
    }

    func run() throws {
        common.apply(program: "mi-pair")
        try StageRunner.run {
            var pairing = Pairing()
            pairing.mode = mode
            pairing.minMargin = minMargin
            pairing.maxPairsPerPrompt = maxPairsPerPrompt
            pairing.maxLengthRatio = maxLengthRatio
            let needsLength = maxLengthRatio > 0 || lengthAdjust
            if lengthAdjust { pairing.lengthFit = try lengthFit() }
            let policy = badRecords.policy()
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            let writer = try JSONLWriter(path: out)
            var withPairs = 0, withoutPairs = 0, pairs = 0
            var seen = Set<String>()
            var current: String?
            var group: [Pairing.Candidate] = []
            func emit() throws {
                guard let id = current else { return }
                let ps = pairing.pairs(group, promptID: id)
                for p in ps { try writer.write(p) }
                if ps.isEmpty { withoutPairs += 1 } else { withPairs += 1 }
                pairs += ps.count
                group = []
            }
            let sorter =
                sort
                ? RecordSorter(memoryBudget: Int(sortMemory * 1_048_576), temporaryDirectory: temporaryDirectory()) {
                    Array(try $0.string("prompt_id").utf8)
                } : nil
            do {
                while let r = try reader.next() {
                    let promptID: String, c: Pairing.Candidate
                    do {
                        promptID = try r.object.string("prompt_id")
                        c = try Pairing.candidate(
                            r.object, fallbackID: "\(r.location.source):\(r.location.line)", needsLength: needsLength)
                    } catch {
                        try reader.reject(r, "\(error)")
                        continue
                    }
                    if let sorter {
                        // Ids from the input's position, so they do not depend on the sort.
                        var o = r.object
                        if o["id"] == nil { o["id"] = .string(c.id) }
                        try sorter.add(o)
                        continue
                    }
                    if current != promptID {
                        try emit()
                        guard seen.insert(promptID).inserted else {
                            throw StreamError.badRecord(
                                r.location,
                                message:
                                    "prompt_id \"\(promptID)\" reappears after other prompts (records of a prompt must be consecutive; use --sort)")
                        }
                        current = promptID
                    }
                    group.append(c)
                }
                if let sorter {
                    try sorter.forEachSorted { o in
                        let promptID = try o.string("prompt_id")
                        if current != promptID {
                            try emit()
                            current = promptID
                        }
                        group.append(try Pairing.candidate(o, fallbackID: "", needsLength: needsLength))
                    }
                    Log.debug("sorted \(sorter.records) records in \(max(sorter.spilledRuns, 1)) runs")
                }
                try emit()
                try writer.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.discard() }
                throw e
            }
            Log.info("\(withPairs + withoutPairs) prompts: \(withPairs) with pairs, \(withoutPairs) without; \(pairs) pairs")
        }
    }

    /// The first pass of --length-adjust: the line of influence on ln(response length). Records
    /// that are not candidates are left to the second pass, which reports them.
    func lengthFit() throws -> Pairing.LengthFit {
        var fit = Pairing.LengthFit()
        let skipAll = BadRecordPolicy(deadLetterPath: nil, maxBadRecords: .max, keepGoing: true)
        let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: skipAll)
        while let r = try reader.next() {
            guard let c = try? Pairing.candidate(r.object, fallbackID: "", needsLength: true) else { continue }
            fit.add(influence: c.influence, length: c.responseLength)
        }
        Log.info(
            "length fit over \(fit.count) candidates: influence = \(fit.intercept) + \(fit.slope) · ln(response characters), Pearson r \(fit.correlation)"
        )
        return fit
    }

    func temporaryDirectory() -> String {
        if let tempDir { return tempDir }
        if let t = getenv("TMPDIR"), t.pointee != 0 { return String(cString: t) }
        return "/tmp"
    }
}
