import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream
import MITrainingCLI

#if canImport(Glibc)
    import Glibc
#endif

extension LocalInfluence.Method: ExpressibleByArgument {}
extension TruncatedResponses: ExpressibleByArgument {}
extension LocalInfluence.Centering: ExpressibleByArgument {}

struct ProbeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-probe",
        abstract: "Score each instruction/response record by its local data influence on a student.",
        discussion: """
            influence = reference loss before − after one AdamW step on the record alone (positive: \
            the record helps). The reference loss is the mean over reference records of each one's \
            mean NLL over its response tokens. Adds "influence", "ref_loss_before", "ref_loss_after" \
            and "probe"; output order is input order. --shard K/N keeps the records whose id hashes \
            to shard K, so shards can run apart and their outputs be concatenated.
            """)

    @Option(help: "Student model (its optimizer state is used when the checkpoint has one).") var student: String
    @Option(help: "Reference records (instruction/response).") var reference: [String]
    @Argument(help: "Records to score ('-' is stdin).") var inputs: [String] = ["-"]
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).") var out = "-"
    @Option(help: "exact, or first-order (∇L_ref·Δθ with ∇L_ref computed once).") var method = LocalInfluence.Method.exact
    @Option(
        help:
            "none (the paper's influence), or momentum: subtract influence(0), the influence of the same AdamW step with a zero gradient, which every candidate shares (the original is kept as influence_uncentered)."
    )
    var center = LocalInfluence.Centering.none
    @Option(help: "Learning rate of the probing step.") var lr = 5e-6
    @Option(help: "AdamW beta1.") var beta1 = 0.9
    @Option(help: "AdamW beta2.") var beta2 = 0.999
    @Option(help: "AdamW epsilon.") var eps = 1e-8
    @Option(help: "AdamW weight decay.") var weightDecay = 0.0
    @Option(help: "A response cut by --max-tokens (\"truncated\": true): open (kept without the end-of-turn marker) or drop (left out, counted).")
    var truncated = TruncatedResponses.open
    @Option(
        help:
            "Split the reference set into K parts (record i in part i mod K) and add \"influence_parts\", the influence on each part's mean loss; the log then says how far the parts agree."
    )
    var referenceParts = 1
    @Option(help: "K/N: score only records whose id hashes to shard K of N.") var shard: String?
    @Flag(help: "Continue OUT.partial of an interrupted run with the same inputs and settings.") var resume = false
    @OptionGroup var badRecords: BadRecordOptions
    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var chatTemplate: ChatTemplateOption
    @OptionGroup var common: CommonOptions

    func shardSpec() throws -> (Int, Int)? { try parseShard(shard) }

    func validate() throws {
        _ = try shardSpec()
        if !(lr > 0) { throw ValidationError("--lr must be > 0") }
        if referenceParts < 1 { throw ValidationError("--reference-parts must be at least 1") }
        if resume && OutputFile.partialPath(for: out) == nil {
            throw ValidationError("--resume needs --out FILE (\(out) is written straight, with no partial file to continue)")
        }
    }

    /// What decides the scores: a resume with other settings is refused.
    func resumeSettings(model: LoadedModel) -> ResumeSettings {
        var settings = ResumeSettings()
        settings.add(model: "student", model)
        settings.add(inputs: "reference", reference)
        settings.add(inputs: "inputs", inputs)
        settings.add("method", method.rawValue)
        settings.add("center", center.rawValue)
        settings.add("truncated", truncated.rawValue)
        for (k, v) in [("lr", lr), ("beta1", beta1), ("beta2", beta2), ("eps", eps), ("weight_decay", weightDecay)] { settings.add(k, v) }
        settings.add("shard", shard ?? "all")
        if referenceParts > 1 { settings.add("reference_parts", referenceParts) }
        return settings
    }

    /// The `probe` object every scored record carries: how its influence was measured.
    func provenance(model: LoadedModel, momentumInfluence: Double) -> JSONObject {
        var probeInfo = JSONObject()
        probeInfo["method"] = .string(method.rawValue)
        probeInfo["lr"] = JSONNumber.value(lr)
        probeInfo["student"] = .string(model.name)
        probeInfo["beta1"] = JSONNumber.value(beta1)
        probeInfo["beta2"] = JSONNumber.value(beta2)
        probeInfo["eps"] = JSONNumber.value(eps)
        probeInfo["weight_decay"] = JSONNumber.value(weightDecay)
        probeInfo["center"] = .string(center.rawValue)
        probeInfo["momentum_influence"] = JSONNumber.value(momentumInfluence)
        if referenceParts > 1 { probeInfo["reference_parts"] = .number(JSONNumber(referenceParts)) }
        return probeInfo
    }

    /// The reference records as training examples (a bad one is named, or diverted).
    func referenceExamples(model: LoadedModel, chat: ChatFormat, policy: BadRecordPolicy) throws -> [TrainingExample] {
        var refs: [TrainingExample] = []
        let refReader = RecordReader(paths: reference, options: badRecords.readOptions, badRecords: policy)
        while let r = try refReader.next() {
            do {
                if let e = try LocalInfluence.example(r.object, model: model, chat: chat, truncated: truncated) { refs.append(e) }
            } catch { try refReader.reject(r, "\(error)") }
        }
        if refs.isEmpty { throw ValidationError("no reference records in \(reference.joined(separator: ", "))") }
        if referenceParts > refs.count {
            throw ValidationError("--reference-parts \(referenceParts) is more than the \(refs.count) reference records")
        }
        return refs
    }

    /// `object` with its measured influence, and the (centred) influence on each reference part.
    func scoredRecord(_ object: JSONObject, _ m: LocalInfluence.Result, probe: LocalInfluence, info: JSONObject) -> (JSONObject, [Double]?) {
        var o = object
        let offset = center == .momentum ? probe.momentumInfluence : 0
        o["influence"] = JSONNumber(m.influence - offset).map(JSONValue.number) ?? .null
        if center == .momentum { o["influence_uncentered"] = JSONNumber(m.influence).map(JSONValue.number) ?? .null }
        var parts: [Double]?
        if referenceParts > 1 {
            parts = zip(m.parts, probe.partMomentumInfluence).map { center == .momentum ? $0 - $1 : $0 }
            o["influence_parts"] = .array(parts!.map { JSONNumber($0).map(JSONValue.number) ?? .null })
        }
        o["ref_loss_before"] = JSONNumber(probe.lossBefore).map(JSONValue.number) ?? .null
        o["ref_loss_after"] = JSONNumber(m.lossAfter).map(JSONValue.number) ?? .null
        o["probe"] = .object(info)
        return (o, parts)
    }

    func run() throws {
        common.apply(program: "mi-probe")
        computeOptions.apply()
        try StageRunner.run(resumable: true) {
            let model = try LoadedModel(path: student, blockWeights: false, chatTemplate: chatTemplate.value)
            let chat = try model.requireChat()
            var hyper = AdamW.Hyperparameters()
            hyper.beta1 = beta1
            hyper.beta2 = beta2
            hyper.eps = eps
            hyper.weightDecay = weightDecay
            let state =
                HuggingFaceDirectory.isDirectory(student)
                ? try Checkpoint.loadOptimizer(dir: student, parameters: model.model.parameters, hyper: hyper) : nil
            let policy = badRecords.policy()
            let refs = try referenceExamples(model: model, chat: chat, policy: policy)
            let probe = LocalInfluence(
                model: model, reference: refs, method: method, lr: lr, hyper: hyper, optimizer: state, parts: referenceParts)
            Log.info("influence of the momentum-only step: \(probe.momentumInfluence)")
            Log.info("reference loss \(probe.lossBefore) over \(refs.count) records (\(state == nil ? "fresh" : "saved") optimizer state)")
            let settings = resumeSettings(model: model)
            if resume { try settings.verify(for: out) }
            let done = resume ? JSONLWriter.partialRecords(of: out) : []
            let writer = try JSONLWriter.resuming(path: out, with: done, flushThreshold: out == "-" ? 1 : 1 << 16)
            try settings.record(for: out)
            let probeInfo = provenance(model: model, momentumInfluence: probe.momentumInfluence)
            let reader = RecordReader(paths: inputs, options: badRecords.readOptions, badRecords: policy)
            let progress = Progress(label: "mi-probe")
            let spec = try shardSpec()
            var selected = 0, scored = 0, dropped = 0
            var agreement = ReferencePartAgreement()
            do {
                while let r = try reader.next() {
                    let id = (try? r.object.string("id")) ?? "\(r.location.source):\(r.location.line)"
                    if let (k, n) = spec, LocalInfluence.shard(of: id, count: n) != k { continue }
                    selected += 1
                    let made: TrainingExample?
                    do { made = try LocalInfluence.example(r.object, model: model, chat: chat, truncated: truncated) } catch {
                        try reader.reject(r, "\(error)")
                        continue
                    }
                    guard let example = made else {
                        dropped += 1
                        continue
                    }
                    // Records already in the resumed output are skipped (rejected ones are not in it).
                    scored += 1
                    if scored <= done.count {
                        guard (try? done[scored - 1].string("id")) == (try? r.object.string("id")) else {
                            throw StageFailure.resumeRefused("\(out).partial does not match the input at record \(selected)")
                        }
                        if referenceParts > 1, case .array(let parts)? = done[scored - 1]["influence_parts"] {
                            agreement.add(
                                parts: parts.compactMap { if case .number(let n) = $0 { n.double } else { nil } },
                                prompt: try? r.object.string("prompt_id"))
                        }
                        continue
                    }
                    let clock = ContinuousClock(), started = clock.now
                    let m = probe.measure(example)
                    let took = started.duration(to: clock.now)
                    Log.debug(
                        "scored \(id) (\(example.prompt.count + example.completion.count) tokens) in \(Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18) s"
                    )
                    let (o, parts) = scoredRecord(r.object, m, probe: probe, info: probeInfo)
                    if let parts { agreement.add(parts: parts, prompt: try? r.object.string("prompt_id")) }
                    try writer.write(o)
                    try writer.flush()
                    try Interrupts.check()
                    progress.update(count: selected)
                }
                try writer.commit()
                try policy.commit()
            } catch let e as StreamError {
                if case .interrupted = e { writer.leavePartial() } else if e != .brokenPipe { writer.discard() }
                throw e
            }
            progress.finish(
                "\(scored) records scored (\(method.rawValue))"
                    + (dropped > 0 ? "; \(dropped) with a truncated response left out (--truncated drop)" : ""))
            if referenceParts > 1 { Log.info(agreement.summary) }
        }
    }
}
