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
        public var truncated: Int
        public var fingerprint: String
    }

    /// Reads instruction/response records (an Alpaca `input` is appended to the instruction).
    public static func readExamples(_ reader: RecordReader, model: LoadedModel, maxLength: Int) throws -> Examples {
        guard let chat = model.chat else { throw StageFailure.usage("\(model.path): the model has no chat template") }
        var items: [TrainingExample] = []
        var truncated = 0
        var fp = Fingerprint()
        while let r = try reader.next() {
            let instruction: String, response: String, input: String?
            do {
                instruction = try r.object.string("instruction")
                response = try r.object.string("response")
                input = try r.object.optionalString("input")
            } catch {
                try reader.reject(r, error.description)
                continue
            }
            let user = (input?.isEmpty ?? true) ? instruction : instruction + "\n\n" + input!
            let prompt = model.tokenizer.encode(chat.prompt(user: user))
            var completion = model.tokenizer.encode(chat.completion(response))
            if prompt.count + completion.count > maxLength {
                truncated += 1
                completion = Array(completion.prefix(max(0, maxLength - prompt.count)))
            }
            if completion.isEmpty || prompt.isEmpty { try reader.reject(r, "prompt longer than --max-length"); continue }
            fp.add(user)
            fp.add(response)
            items.append(TrainingExample(prompt: prompt, completion: completion))
        }
        return Examples(items: items, truncated: truncated, fingerprint: fp.hex)
    }

    public func run(_ examples: Examples, resume: Bool) throws {
        let loop = TrainingLoop(model: loaded, settings: settings, out: out, stage: "sft",
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
