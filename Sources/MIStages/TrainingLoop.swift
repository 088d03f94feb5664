import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// The optimizer-step loop shared by SFT and DPO: data order, gradient accumulation, clipping,
/// the schedule, AdamW, metrics lines, checkpoints, --stop-after and --resume. What a batch's loss
/// is comes from the stage, as a closure that adds a micro-batch's gradient and returns its
/// metric fields (at least "loss" and "tokens").
public final class TrainingLoop {
    public let loaded: LoadedModel
    public let settings: TrainingSettings
    public let out: String
    public let stage: String
    public let dataFingerprint: String
    public let itemCount: Int
    public var metricsPath: String?
    /// Extra fields for trainer_state.json (e.g. the DPO beta).
    public var stateExtras = JSONObject()
    /// The model training started from: the loaded one, or, on a resume, the one the checkpoint
    /// being continued names (the loaded model is then that checkpoint itself).
    private var baseModel: String?
    /// A last metrics line after the final step (e.g. DPO's held-out pairs).
    public var finalMetrics: (() throws -> JSONObject)?

    public init(model: LoadedModel, settings: TrainingSettings, out: String, stage: String, dataFingerprint: String, itemCount: Int) {
        loaded = model
        self.settings = settings
        self.out = out
        self.stage = stage
        self.dataFingerprint = dataFingerprint
        self.itemCount = itemCount
    }

    public typealias MicroBatch = (_ items: [Int], _ backprop: Backpropagation, _ scale: Float) throws -> JSONObject

    public func run(resume: Bool, _ micro: MicroBatch) throws {
        let s = settings
        let model = loaded.model
        let total = s.totalSteps(examples: itemCount)
        let schedule = LearningRateSchedule(
            kind: s.schedule, peak: s.lr, totalSteps: total, warmupRatio: s.warmupRatio,
            decayRatio: s.decayRatio, minLRRatio: s.minLRRatio)
        var optimizer = AdamW(count: model.parameters.count, hyper: s.adam)
        var startStep = 0
        if resume, let state = try Checkpoint.trainerState(dir: out) {
            if let difference = difference(from: state) {
                throw StageFailure.resumeRefused("\(out): cannot resume: \(difference); rerun with the same settings and data, or without --resume")
            }
            startStep = try state.int("step")
            baseModel = try? state.string("base_model")
            guard let saved = try Checkpoint.loadOptimizer(dir: out, parameters: model.parameters, hyper: s.adam) else {
                throw StageFailure.resumeRefused("\(out): no optimizer state to resume from")
            }
            optimizer = saved
        }
        let metrics = try metricsPath.map { try JSONLWriter(path: $0) }
        if let metrics, startStep > 0, access(metrics.path, R_OK) == 0 {
            // Keep the metrics of the steps the checkpoint holds, drop any written after it.
            let reader = RecordReader(paths: [metrics.path])
            while let r = try reader.next() {
                if let step = try? r.object.int("step"), step <= startStep { try metrics.write(r.object) }
            }
        }
        let bp = Backpropagation(model: model)
        let perStep = s.batchSize * s.gradAccum
        let perEpoch = max((itemCount + perStep - 1) / perStep, 1)
        let clock = Progress(label: "mi-\(stage)", unit: "steps", total: total)
        var step = startStep
        while step < total {
            try Interrupts.check()
            let order = s.order(examples: itemCount, epoch: step / perEpoch)
            let first = (step % perEpoch) * perStep
            let chosen = Array(order[first..<min(first + perStep, order.count)])
            let micros = stride(from: 0, to: chosen.count, by: s.batchSize).map { Array(chosen[$0..<min($0 + s.batchSize, chosen.count)]) }
            bp.zeroGradients()
            var fields: [String: Double] = [:]
            for mb in micros {
                let m = try micro(mb, bp, 1 / Float(micros.count))
                for member in m.members {
                    guard case let .number(v) = member.value else { continue }
                    // Means over micro-batches, except counts, which add up.
                    fields[member.key, default: 0] += member.key == "tokens" ? v.double : v.double / Double(micros.count)
                }
            }
            let norm = clipGradientNorm(bp.gradients, maxNorm: s.gradClip)
            let lr = schedule.learningRate(step: step)
            optimizer.update(parameters: model.parameters.buffer, gradients: bp.gradients, lr: lr)
            step += 1
            var line = JSONObject()
            line["stage"] = .string(stage)
            line["step"] = .number(JSONNumber(step))
            line["epoch"] = number(Double(step) / Double(perEpoch))
            for key in fields.keys.sorted() { line[key] = key == "tokens" ? .number(JSONNumber(Int(fields[key]!))) : number(fields[key]!) }
            line["lr"] = number(lr)
            line["grad_norm"] = number(norm)
            line["elapsed_s"] = number((clock.elapsed * 1000).rounded() / 1000)
            try metrics?.write(line)
            try metrics?.flush()
            clock.update(count: step, position: step)
            if s.stopAfter > 0 && step >= s.stopAfter && step < total {
                try save(optimizer, step: step, total: total, final: false)
                try metrics?.commit()
                clock.finish("stopped after \(step) of \(total) steps; continue with --resume")
                return
            }
            if s.saveEvery > 0 && step % s.saveEvery == 0 && step < total { try save(optimizer, step: step, total: total, final: false) }
        }
        if let finalMetrics, let metrics {
            var line = try finalMetrics()
            line["step"] = .number(JSONNumber(step))
            line["lr"] = number(schedule.learningRate(step: max(step - 1, 0)))
            try metrics.write(line)
        }
        try save(optimizer, step: step, total: total, final: true)
        try metrics?.commit()
        clock.finish("\(step) steps; checkpoint in \(out)")
    }

    func number(_ x: Double) -> JSONValue { JSONNumber.value(x) }

    var fingerprint: String { settings.fingerprint + (stateExtras.members.isEmpty ? "" : "|" + JSONWriter.string(.object(stateExtras))) }

    /// How the checkpoint being resumed was made differently from this run, naming the first
    /// differing setting and both values (nil when it was made the same way).
    func difference(from state: JSONObject) -> String? {
        let stageWas = (try? state.string("stage")) ?? "?"
        if stageWas != stage { return "it was made by \(stageWas), this run is \(stage)" }
        let was = ((try? state.string("settings")) ?? "").split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let now = fingerprint.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        let names = settings.named.map(\.0)
        for (i, name) in names.enumerated() where i >= was.count || was[i] != now[i] {
            return "made with \(name) = \(i < was.count ? was[i] : "(not recorded)"), this run has \(name) = \(now[i])"
        }
        if was != now {
            let extra = { (v: [String]) in v.dropFirst(names.count).joined(separator: "|") }
            return "made with \(extra(was)), this run has \(extra(now))"
        }
        if (try? state.string("data")) != dataFingerprint { return "its training data differs from this run's (another file, order or tokenization)" }
        return nil
    }

    func save(_ optimizer: AdamW, step: Int, total: Int, final: Bool) throws {
        var state = stateExtras
        state["stage"] = .string(stage)
        state["step"] = .number(JSONNumber(step))
        state["total_steps"] = .number(JSONNumber(total))
        state["settings"] = .string(fingerprint)
        state["data"] = .string(dataFingerprint)
        state["base_model"] = .string(baseModel ?? loaded.path)
        let keepOptimizer = settings.saveOptimizer || !final
        try Checkpoint.save(
            model: loaded.model, tokenizer: loaded.tokenizer, chatTemplate: loaded.chatTemplate,
            optimizer: keepOptimizer ? optimizer : nil, trainerState: state, to: out, dtype: final ? settings.dtype : .f32)
    }
}
