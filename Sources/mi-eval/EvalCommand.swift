import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

extension TruncatedResponses: ExpressibleByArgument {}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-eval",
        abstract: "Per-record loss of a model on instruction/response records, with a bootstrap interval of the mean.",
        discussion: """
            Writes each record with "loss" (mean NLL over its response tokens, as mi-probe defines the \
            reference loss) and "tokens" (how many), and, with --against, "loss_against" and \
            "tokens_against"; prints the mean and a 95 % bootstrap \
            interval on stderr, and for two models the paired difference (model − against).

            With --pairs instead of --data: how the model ranks preference pairs against the --against \
            model, as mi-dpo reports its held-out pairs (a pair is ranked right when the model raised \
            the chosen response's log-probability more than the rejected one's). Writes each pair's \
            "chosen_logp_shift", "rejected_logp_shift" and "correct", and prints the metrics (accuracy \
            with its interval, reward margin at --beta, loss, log-probability shifts) on stderr. \
            --heldout-fraction keeps exactly the pairs mi-dpo held out with the same fraction.
            """)

    @Option(help: "Model to evaluate.") var model: String
    @Option(help: "Records with instruction and response.") var data: [String] = []
    @Option(help: "Preference pairs (prompt, chosen, rejected) to rank against --against, instead of --data.") var pairs: [String] = []
    @Option(help: "With --pairs: only the pairs mi-dpo --heldout-fraction F holds out.") var heldoutFraction: Double?
    @Option(help: "With --pairs: DPO β of the reward margin and loss (default 0.1).") var beta: Double?
    @Option(help: "With --pairs: tokens of prompt and response kept, mi-dpo's --max-length (default 2048).") var maxLength: Int?
    @Option(help: "A second model, evaluated on the same records for a paired comparison.") var against: String?
    @Option(name: .shortAndLong, help: "Per-record output ('-' is stdout).") var out = "-"
    @Option(help: "With --data: bootstrap resamples (default 1000).") var bootstrap: Int?
    @Option(
        help: """
            With --data: a response cut by --max-tokens ("truncated": true): open (kept without the \
            end-of-turn marker, the default) or drop (left out, counted).
            """
    )
    var truncated: TruncatedResponses?
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if data.isEmpty == pairs.isEmpty { throw ValidationError("give either --data or --pairs") }
        if !pairs.isEmpty && against == nil { throw ValidationError("--pairs needs --against, the reference model") }
        if pairs.isEmpty {
            for (given, flag) in [(heldoutFraction != nil, "--heldout-fraction"), (beta != nil, "--beta"), (maxLength != nil, "--max-length")]
            where given { throw ValidationError("\(flag) goes with --pairs") }
        } else {
            for (given, flag) in [(bootstrap != nil, "--bootstrap"), (truncated != nil, "--truncated")]
            where given { throw ValidationError("\(flag) goes with --data") }
        }
        if let n = bootstrap, n < 1 { throw ValidationError("--bootstrap must be at least 1") }
        if let n = maxLength, n < 2 { throw ValidationError("--max-length must be at least 2") }
        if let f = heldoutFraction, !(f > 0 && f < 1) { throw ValidationError("--heldout-fraction must be between 0 and 1") }
    }

    func run() throws {
        common.apply(program: "mi-eval")
        computeOptions.apply()
        if !pairs.isEmpty {
            try StageRunner.run { try PairRanking(command: self).run(pairs: pairs, reference: against!) }
            return
        }
        try StageRunner.run {
            let first = try LoadedModel(path: model, blockWeights: false, chatTemplate: chatTemplate.value)
            let firstChat = try first.requireChat()
            let policy = badRecords.policy()
            let truncated = truncated ?? .open, bootstrap = bootstrap ?? 1000
            let reader = RecordReader(paths: data, options: badRecords.readOptions, badRecords: policy)
            var records: [JSONObject] = []
            var examples: [TrainingExample] = []
            var dropped = 0
            while let r = try reader.next() {
                let made: TrainingExample?
                do { made = try LocalInfluence.example(r.object, model: first, chat: firstChat, truncated: truncated) } catch {
                    try reader.reject(r, "\(error)")
                    continue
                }
                guard let example = made else {
                    dropped += 1
                    continue
                }
                examples.append(example)
                records.append(r.object)
            }
            if dropped > 0 { Log.info("\(dropped) records with a truncated response left out (--truncated drop)") }
            if records.isEmpty { throw ValidationError("no records in \(data.joined(separator: ", "))") }
            let a = Evaluation.losses(first, examples)
            var b: [Double]?
            var otherTokens: [Int]?
            if let against {
                let second = try LoadedModel(path: against, blockWeights: false, chatTemplate: chatTemplate.value)
                let secondChat = try second.requireChat()
                // Same text, the second model's own tokenizer.
                let other = try records.map { try LocalInfluence.example($0, model: second, chat: secondChat, truncated: truncated)! }
                b = Evaluation.losses(second, other)
                otherTokens = other.map(\.completion.count)
            }
            let writer = try JSONLWriter(path: out)
            for (i, var o) in records.enumerated() {
                o["loss"] = JSONNumber(a[i]).map(JSONValue.number) ?? .null
                o["tokens"] = .number(JSONNumber(examples[i].completion.count))
                if let b { o["loss_against"] = JSONNumber(b[i]).map(JSONValue.number) ?? .null }
                if let otherTokens { o["tokens_against"] = .number(JSONNumber(otherTokens[i])) }
                try writer.write(o)
            }
            try writer.commit()
            try policy.commit()
            let ia = Evaluation.bootstrap(a, resamples: bootstrap)
            var summary = "\(records.count) records: mean loss \(fmt(ia.mean)) (95 % CI \(fmt(ia.low))–\(fmt(ia.high)))"
            if let b {
                let ib = Evaluation.bootstrap(b, resamples: bootstrap)
                let diff = Evaluation.bootstrap(zip(a, b).map { $0 - $1 }, resamples: bootstrap)
                let wins = zip(a, b).filter { $0 < $1 }.count
                summary +=
                    "; against: \(fmt(ib.mean)) (\(fmt(ib.low))–\(fmt(ib.high))); difference \(fmt(diff.mean)) "
                    + "(95 % CI \(fmt(diff.low))–\(fmt(diff.high))); lower loss on \(wins) of \(records.count) records"
            }
            Log.info(summary)
        }
    }

    func fmt(_ x: Double) -> String { String(Double(Int((x * 10000).rounded())) / 10000) }
}
