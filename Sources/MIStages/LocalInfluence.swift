import MICore
import MIStream

/// Local data influence (Montessori-Instruct): how much one optimizer step on a single training
/// record lowers the student's loss on a reference set,
///     influence(x) = L_ref(θ) − L_ref(θ − Δθ(x)),
/// where Δθ(x) is one AdamW step on x alone from the student's optimizer state (fresh when the
/// checkpoint has none) and L_ref is the mean over reference examples of each example's mean
/// negative log-likelihood over its response tokens. Positive: the record helps the student.
/// The student is restored in memory after each record, never reloaded: the step writes only the
/// parameters (the optimizer's moments are read, not updated), which are copied back.
///
/// `firstOrder` replaces the second reference pass by the linear estimate −∇L_ref(θ)·Δθ(x), with
/// ∇L_ref computed once: one forward and backward pass per record instead of a pass over the
/// reference set.
///
/// With `parts` K > 1 the reference set is split into K parts (record i in part i mod K) and each
/// record's influence on every part's own mean loss is measured as well: the influence is their
/// average weighted by part size, and how well the parts agree says how much of a candidate's
/// influence is a property of the candidate rather than of the few reference records it was
/// measured on.
public final class LocalInfluence {
    public enum Method: String, Sendable {
        case exact
        case firstOrder = "first-order"
    }
    /// `momentum` subtracts influence(0), the change of the reference loss after the same AdamW
    /// step with a zero gradient: the part of every candidate's step that comes from the saved
    /// first moment (β1·m) and weight decay, which all candidates share.
    public enum Centering: String, Sendable { case none, momentum }

    public let loaded: LoadedModel
    public let reference: [TrainingExample]
    public let method: Method
    public let lr: Double
    public let hyper: AdamW.Hyperparameters
    private let optimizer: AdamW
    /// The student's weights, copied back after each exact probe (first-order changes nothing).
    private let savedParameters: FloatBuffer?
    private let backprop: Backpropagation
    private var referenceGradient: FloatBuffer?
    /// With parts: ∇ of each part's mean loss (first-order), instead of `referenceGradient`.
    private var partGradients: [FloatBuffer] = []
    public let parts: Int
    public private(set) var lossBefore = 0.0
    /// Each part's reference loss before the step (one value without parts).
    public private(set) var partLossBefore: [Double] = []
    /// influence(0): the momentum-only step's influence (0 with a fresh optimizer state).
    public private(set) var momentumInfluence = 0.0
    /// influence(0) on each part.
    public private(set) var partMomentumInfluence: [Double] = []

    public init(
        model: LoadedModel, reference: [TrainingExample], method: Method, lr: Double, hyper: AdamW.Hyperparameters,
        optimizer: AdamW?, parts: Int = 1
    ) {
        precondition(parts >= 1 && parts <= reference.count, "parts must be between 1 and the number of reference records")
        loaded = model
        self.parts = parts
        self.reference = reference
        self.method = method
        self.lr = lr
        self.hyper = hyper
        let P = model.model.parameters
        self.optimizer = optimizer ?? AdamW(count: P.count, hyper: hyper)
        self.optimizer.hyper = hyper
        if method == .exact {
            savedParameters = FloatBuffer(count: P.count, zeroed: false)
            savedParameters!.copy(from: P.buffer)
        } else {
            savedParameters = nil
        }
        backprop = Backpropagation(model: model.model)
        partLossBefore = partMeans(referenceLosses())
        lossBefore = parts == 1 ? partLossBefore[0] : referenceLoss(partLosses: partLossBefore)
        if method == .firstOrder {
            if parts == 1 {
                referenceGradient = gradient(of: reference)
            } else {
                partGradients = (0..<parts).map { gradient(of: partRecords($0)) }
            }
        }
        let zero = measureStep(gradientsFrom: nil)
        momentumInfluence = zero.influence
        partMomentumInfluence = zero.parts
    }

    /// The reference records of part `k`.
    func partRecords(_ k: Int) -> [TrainingExample] { Array(stride(from: k, to: reference.count, by: parts).map { reference[$0] }) }

    /// The size of part `k` as a share of the reference set: its weight in the whole loss.
    func partWeight(_ k: Int) -> Double {
        Double((reference.count - k + parts - 1) / parts) / Double(reference.count)
    }

    /// The whole reference loss from the parts' losses.
    func referenceLoss(partLosses: [Double]) -> Double { (0..<parts).reduce(0.0) { $0 + partWeight($1) * partLosses[$1] } }

    /// Each part's mean of per-example losses (`losses` in reference order).
    func partMeans(_ losses: [Double]) -> [Double] {
        var sums = [Double](repeating: 0, count: parts), counts = [Int](repeating: 0, count: parts)
        for (i, l) in losses.enumerated() {
            sums[i % parts] += l
            counts[i % parts] += 1
        }
        return zip(sums, counts).map { $0 / Double(max($1, 1)) }
    }

    /// ∇ of the mean over `examples` of each one's mean NLL: weight 1/(E · tokens_e).
    func gradient(of examples: [TrainingExample]) -> FloatBuffer {
        backprop.zeroGradients()
        let e = Double(examples.count)
        // Four examples at a time bound the activations kept for the backward pass.
        for b0 in stride(from: 0, to: examples.count, by: 4) {
            let part = Array(examples[b0..<min(b0 + 4, examples.count)])
            backprop.accumulate(part, scale: 1) { _, counts in counts.map { 1 / (e * Double(max($0, 1))) } }
        }
        let g = FloatBuffer(count: backprop.gradients.count, zeroed: false)
        g.copy(from: backprop.gradients)
        return g
    }

    /// Mean over the reference examples of each example's mean completion NLL. The exact probe
    /// scores in f32 whatever the model computes in: its step (lr · an AdamW-normalised update)
    /// changes most weights by less than bf16 can tell apart, so bf16 products would lose it.
    public func referenceLoss(batch: Int = 8) -> Double {
        let losses = referenceLosses(batch: batch)
        return losses.reduce(0, +) / Double(max(losses.count, 1))
    }

    /// Each reference example's mean completion NLL, in reference order.
    func referenceLosses(batch: Int = 8) -> [Double] {
        let model = loaded.model, compute = model.compute
        if method == .exact { model.compute = .f32 }
        defer { model.compute = compute }
        var losses: [Double] = []
        for b0 in stride(from: 0, to: reference.count, by: batch) {
            let part = reference[b0..<min(b0 + batch, reference.count)]
            for lp in loaded.model.completionLogProbs(part.map { ($0.prompt, $0.completion) }) {
                losses.append(-lp.reduce(0, +) / Double(max(lp.count, 1)))
            }
        }
        return losses
    }

    public struct Result {
        public let influence: Double
        public let lossAfter: Double
        /// The influence on each part's mean loss (one value, the influence, without parts).
        public let parts: [Double]
    }

    public func measure(_ example: TrainingExample) -> Result { measureStep(gradientsFrom: example) }

    /// The influence of one AdamW step on `example`'s gradient (nil: a zero gradient).
    func measureStep(gradientsFrom example: TrainingExample?) -> Result {
        let P = loaded.model.parameters
        backprop.zeroGradients()
        if let example { backprop.accumulate([example]) }
        if let g = referenceGradient {
            // −∇L_ref · Δθ, with Δθ the change the AdamW step would store; nothing is written.
            let dot = optimizer.stepDot(parameters: P.buffer, gradients: backprop.gradients, lr: lr, direction: g)
            return Result(influence: -dot, lossAfter: lossBefore + dot, parts: [-dot])
        }
        if !partGradients.isEmpty {
            let dots = partGradients.map { optimizer.stepDot(parameters: P.buffer, gradients: backprop.gradients, lr: lr, direction: $0) }
            let dot = referenceLoss(partLosses: dots)
            return Result(influence: -dot, lossAfter: lossBefore + dot, parts: dots.map { -$0 })
        }
        // The step's parameters only: the moments and step count stay as saved.
        optimizer.updateParametersOnly(parameters: P.buffer, gradients: backprop.gradients, lr: lr)
        let losses = referenceLosses()
        P.buffer.copy(from: savedParameters!)
        if parts == 1 {
            let after = losses.reduce(0, +) / Double(max(losses.count, 1))
            return Result(influence: lossBefore - after, lossAfter: after, parts: [lossBefore - after])
        }
        let partsAfter = partMeans(losses), after = referenceLoss(partLosses: partsAfter)
        return Result(influence: lossBefore - after, lossAfter: after, parts: zip(partLossBefore, partsAfter).map { $0 - $1 })
    }

    /// The training example of an instruction/response record, as mi-sft builds it (nil: a
    /// truncated response left out), in `chat` (the model's `requireChat()`).
    public static func example(
        _ o: JSONObject, model: LoadedModel, chat: ChatFormat, truncated: TruncatedResponses = .open
    ) throws(FieldError) -> TrainingExample? {
        try InstructionExample.make(o, model: model, chat: chat, truncated: truncated)
    }

    /// Shard of a record id: FNV-1a of the id modulo `count`.
    public static func shard(of id: String, count: Int) -> Int {
        var f = Fingerprint()
        f.add(id.utf8)
        return Int(f.value % UInt64(count))
    }
}
