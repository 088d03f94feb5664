import ArgumentParser
import MICLI
import MIStages
import MIStream

extension Pairing.Mode: ExpressibleByArgument {}

struct PairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-pair",
        abstract: "Turn scored candidates into DPO pairs: chosen influence > 0 > rejected influence, per prompt.",
        discussion: """
        Records of a prompt must be consecutive (as mi-generate writes them); a prompt_id that \
        reappears later is an error unless --sort, which groups the whole input in memory first.
        """)

    @Argument(help: "Scored records ('-' is stdin).") var inputs: [String] = ["-"]
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).") var out = "-"
    @Option(help: "all: every chosen × rejected combination; best-worst: one pair per prompt.") var mode = Pairing.Mode.all
    @Option(help: "Keep pairs whose influence margin is at least this.") var minMargin = 0.0
    @Option(help: "At most this many pairs per prompt, largest margins first (0: all).") var maxPairsPerPrompt = 0
    @Flag(help: "Group records by prompt_id in memory when they are not consecutive.") var sort = false
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-pair")
        try StageRunner.run {
            var pairing = Pairing()
            pairing.mode = mode
            pairing.minMargin = minMargin
            pairing.maxPairsPerPrompt = maxPairsPerPrompt
            let policy = badRecords.policy()
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            let writer = try JSONLWriter(path: out)
            var withPairs = 0, withoutPairs = 0, pairs = 0
            var seen = Set<String>()
            var order: [String] = []
            var groups: [String: [Pairing.Candidate]] = [:]
            var current: (id: String, line: Int)?
            func emit(_ id: String) throws {
                let ps = pairing.pairs(groups[id] ?? [], promptID: id)
                for p in ps { try writer.write(p) }
                if ps.isEmpty { withoutPairs += 1 } else { withPairs += 1 }
                pairs += ps.count
                groups[id] = nil
            }
            do {
                while let r = try reader.next() {
                    let promptID: String, c: Pairing.Candidate
                    do {
                        promptID = try r.object.string("prompt_id")
                        c = try Pairing.candidate(r.object, fallbackID: "\(r.location.source):\(r.location.line)")
                    } catch { try reader.reject(r, "\(error)"); continue }
                    if !sort, current?.id != promptID {
                        if let cur = current { try emit(cur.id) }
                        guard seen.insert(promptID).inserted else {
                            throw StreamError.badRecord(r.location, message: "prompt_id \"\(promptID)\" reappears after other prompts (records of a prompt must be consecutive; use --sort)")
                        }
                        current = (promptID, r.location.line)
                    }
                    if groups[promptID] == nil { order.append(promptID) }
                    groups[promptID, default: []].append(c)
                }
                if sort { for id in order { try emit(id) } } else if let cur = current { try emit(cur.id) }
                try writer.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.discard() }
                throw e
            }
            Log.info("\(withPairs + withoutPairs) prompts: \(withPairs) with pairs, \(withoutPairs) without; \(pairs) pairs")
        }
    }
}
