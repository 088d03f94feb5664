import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Supervised fine-tuning on instruction/response records: the completion-only loss of each
/// chat-formatted example, through the shared `TrainingLoop` (AdamW, schedule, clipping,
/// accumulation, checkpoints, resume).
public final class SFTRun {
    public let loaded: LoadedModel
    public let settings: TrainingSettings
    public let out: String
    public var metricsPath: String?

    public init(model: LoadedModel, settings: TrainingSettings, out: String) {
        loaded = model
        self.settings = settings
        self.out = out
    }

    public struct Examples {
        public var items: [TrainingExample]
        /// Examples cut to the length limit.
        public var truncated: Int
        /// Records with a truncated response left out (`TruncatedResponses.drop`).
        public var dropped: Int
        public var fingerprint: String
    }

    /// Reads instruction/response records (an Alpaca `input` is appended to the instruction);
    /// truncated responses are kept without the end-of-turn marker or left out (`dropped`).
    public static func readExamples(
        _ reader: RecordReader, model: LoadedModel, maxLength: Int,
        truncatedResponses: TruncatedResponses = .open
    ) throws -> Examples {
        let chat = try model.requireChat()
        var items: [TrainingExample] = []
        var truncated = 0, dropped = 0
        var fp = Fingerprint()
        while let r = try reader.next() {
            let made: TrainingExample?
            do {
                made = try InstructionExample.make(r.object, model: model, chat: chat, truncated: truncatedResponses)
            } catch {
                try reader.reject(r, error.description)
                continue
            }
            guard var example = made else {
                dropped += 1
                continue
            }
            if example.prompt.count + example.completion.count > maxLength {
                truncated += 1
                example.completion = Array(example.completion.prefix(max(0, maxLength - example.prompt.count)))
            }
            if example.completion.isEmpty || example.prompt.isEmpty {
                try reader.reject(r, "prompt longer than --max-length")
                continue
            }
            fp.add("\(example.prompt.count) \(example.completion.count)")
            fp.add(example.prompt.withUnsafeBytes { Array($0) })
            fp.add(example.completion.withUnsafeBytes { Array($0) })
            items.append(example)
        }
        return Examples(items: items, truncated: truncated, dropped: dropped, fingerprint: fp.hex)
    }

    public func run(_ examples: Examples, resume: Bool) throws {
        let loop = TrainingLoop(
            model: loaded, settings: settings, out: out, stage: "sft",
            dataFingerprint: examples.fingerprint, itemCount: examples.items.count)
        loop.metricsPath = metricsPath
        try loop.run(resume: resume) { items, bp, scale in
            let loss = bp.accumulate(items.map { examples.items[$0] }, scale: scale)
            var m = JSONObject()
            m["loss"] = JSONNumber(loss.mean).map(JSONValue.number) ?? .null
            m["tokens"] = .number(JSONNumber(loss.tokens))
            return m
        }
    }
}

/// Stage-level failures with their exit codes.
public enum StageFailure: StageError {
    case usage(String)
    case resumeRefused(String)

    public var exitStatus: ExitStatus {
        switch self {
        case .usage: return .usage
        case .resumeRefused: return .config
        }
    }

    public var description: String {
        switch self {
        case let .usage(m), let .resumeRefused(m): return m
        }
    }
}
