import MICore
import MIStream
#if canImport(Glibc)
import Glibc
#endif

/// Supervised fine-tuning on instruction/response records: the completion-only loss of each
/// chat-formatted example, AdamW, the chosen schedule, clipping and accumulation. Checkpoints go
/// to `out`; `resume` continues a run stopped after a checkpoint and ends with the same weights.
public final class SFTRun {
    public let loaded: LoadedModel
    public let settings: TrainingSettings
    public let out: String
    public var metricsPath: String?
    public var onStep: ((JSONObject) -> Void)?

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
        let s = settings
        let model = loaded.model
        let total = s.totalSteps(examples: examples.items.count)
        let schedule = LearningRateSchedule(kind: s.schedule, peak: s.lr, totalSteps: total, warmupRatio: s.warmupRatio,
                                            decayRatio: s.decayRatio, minLRRatio: s.minLRRatio)
        var optimizer = AdamW(count: model.parameters.count, hyper: s.adam)
        var startStep = 0
        if resume, let state = try Checkpoint.trainerState(dir: out) {
            guard (try? state.string("settings")) == s.fingerprint, (try? state.string("data")) == examples.fingerprint else {
                throw StageFailure.resumeRefused("\(out): settings or data differ from the run being resumed")
            }
            startStep = try state.int("step")
            if let saved = try Checkpoint.loadOptimizer(dir: out, parameters: model.parameters, hyper: s.adam) { optimizer = saved }
            else { throw StageFailure.resumeRefused("\(out): no optimizer state to resume from (save with --save-optimizer or --save-every)") }
        }
        let metrics = try metricsPath.map { try JSONLWriter(path: $0) }
        if let metrics, startStep > 0 {
            // Keep the metrics of the steps the checkpoint holds, drop any written after it.
            for earlier in [metrics.path, metrics.path + ".partial.previous"] where access(earlier, R_OK) == 0 {
                let reader = RecordReader(paths: [earlier])
                while let r = try reader.next() {
                    if let step = try? r.object.int("step"), step <= startStep { try metrics.write(r.object) }
                }
                break
            }
        }
        let bp = Backpropagation(model: model)
        let perStep = s.batchSize * s.gradAccum
        let perEpoch = (examples.items.count + perStep - 1) / perStep
        let clock = Progress(label: "mi-sft", unit: "steps", total: total)
        var step = startStep
        while step < total {
            try Interrupts.check()
            let epoch = step / max(perEpoch, 1)
            let order = s.order(examples: examples.items.count, epoch: epoch)
            let first = (step % perEpoch) * perStep
            let chosen = order[first..<min(first + perStep, order.count)].map { examples.items[$0] }
            bp.zeroGradients()
            var lossSum = 0.0, tokens = 0
            let micro = stride(from: 0, to: chosen.count, by: s.batchSize).map { Array(chosen[$0..<min($0 + s.batchSize, chosen.count)]) }
            for mb in micro {
                let loss = bp.accumulate(mb, scale: 1 / Float(micro.count))
                lossSum += loss.mean / Double(micro.count)
                tokens += loss.tokens
            }
            let norm = clipGradientNorm(bp.gradients, maxNorm: s.gradClip)
            let lr = schedule.learningRate(step: step)
            optimizer.update(parameters: model.parameters.buffer, gradients: bp.gradients, lr: lr)
            step += 1
            var m = JSONObject()
            m["stage"] = .string("sft")
            m["step"] = .number(JSONNumber(step))
            m["epoch"] = JSONNumber(Double(step) / Double(max(perEpoch, 1))).map(JSONValue.number) ?? .null
            m["loss"] = JSONNumber(lossSum).map(JSONValue.number) ?? .null
            m["lr"] = JSONNumber(lr).map(JSONValue.number) ?? .null
            m["grad_norm"] = JSONNumber(norm).map(JSONValue.number) ?? .null
            m["tokens"] = .number(JSONNumber(tokens))
            m["elapsed_s"] = JSONNumber((clock.elapsed * 1000).rounded() / 1000).map(JSONValue.number) ?? .null
            try metrics?.write(m)
            try metrics?.flush()
            onStep?(m)
            clock.update(count: step, position: step)
            if s.stopAfter > 0 && step >= s.stopAfter && step < total {
                try save(optimizer: optimizer, step: step, total: total, data: examples.fingerprint, final: false)
                try metrics?.commit()
                clock.finish("stopped after \(step) of \(total) steps; resume with --resume")
                return
            }
            if s.saveEvery > 0 && step % s.saveEvery == 0 && step < total {
                try save(optimizer: optimizer, step: step, total: total, data: examples.fingerprint, final: false)
                try metrics?.flush()
            }
        }
        try save(optimizer: optimizer, step: step, total: total, data: examples.fingerprint, final: true)
        try metrics?.commit()
        clock.finish("\(step) steps; checkpoint in \(out)")
    }

    func save(optimizer: AdamW, step: Int, total: Int, data: String, final: Bool) throws {
        var state = JSONObject()
        state["stage"] = .string("sft")
        state["step"] = .number(JSONNumber(step))
        state["total_steps"] = .number(JSONNumber(total))
        state["settings"] = .string(settings.fingerprint)
        state["data"] = .string(data)
        state["base_model"] = .string(loaded.path)
        let keepOptimizer = settings.saveOptimizer || !final
        try Checkpoint.save(model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
                            optimizer: keepOptimizer ? optimizer : nil, trainerState: state, to: out, dtype: final ? settings.dtype : .f32)
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
