import CSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Loss and gradients of a Llama model on a batch of examples, in f32 on BLAS. The forward pass is
/// the model's own (`LlamaModel.forwardKeeping`: the same blocks as inference, keeping what the
/// backward needs); this type adds the loss over completion tokens and runs the blocks' backward
/// passes in reverse. Sequences are packed without padding, each attending only to itself.
/// Gradients accumulate into `gradients`, laid out like the parameters.
public final class Backpropagation {
    public let model: LlamaModel
    public let gradients: FloatBuffer

    public init(model: LlamaModel) {
        self.model = model
        gradients = FloatBuffer(count: model.parameters.count)
    }

    /// Adds the gradient of the batch's mean completion loss to `gradients` (scaled by `scale`,
    /// e.g. 1/accumulation steps) and returns the loss.
    @discardableResult
    public func accumulate(_ batch: [TrainingExample], scale: Float = 1) -> BatchLoss {
        accumulate(batch, scale: scale, weighting: nil)
    }

    /// The general form: after the forward pass, `weighting` receives each example's summed
    /// completion NLL and token count and returns the weight of each example's summed NLL in the
    /// loss to differentiate (DPO's weights depend on the policy's own log-probabilities).
    /// Without it, the loss is the mean NLL over all completion tokens.
    @discardableResult
    public func accumulate(
        _ batch: [TrainingExample], scale: Float = 1,
        weighting: (([Double], [Int]) -> [Double])?
    ) -> BatchLoss {
        let m = model, P = m.parameters, d = m.config.hiddenSize, G = gradients.pointer
        let kept = m.forwardKeeping(batch.map(\.tokens))
        let layout = kept.layout, T = layout.total

        // The token at position j is predicted by the hidden state at j - 1.
        var targets: [Target] = []
        for (ei, e) in batch.enumerated() {
            for j in 0..<e.completion.count where e.prompt.count + j > 0 {
                targets.append(Target(row: layout.starts[ei] + e.prompt.count + j - 1, token: e.completion[j], example: ei))
            }
        }
        var loss = ExampleLosses(count: batch.count)
        let weights: [Float]
        if let weighting {
            // A first pass for the log-probabilities the weights depend on.
            loss = headPass(kept.hidden, targets, examples: batch.count, weights: nil, dHidden: nil)
            weights = weighting(loss.sums, loss.counts).map { Float($0) * scale }
        } else {
            weights = [Float](repeating: scale / Float(max(targets.count, 1)), count: batch.count)
        }
        let dHidden = FloatBuffer(count: T * d)
        let second = headPass(kept.hidden, targets, examples: batch.count, weights: weights, dHidden: dHidden)
        if weighting == nil { loss = second }

        // Backward, each step inverting one step of `LlamaModel.run`, last to first.
        let dx = FloatBuffer(count: T * d)
        RMSNorm.backward(
            kept.residual.pointer, P.pointer(P.finalNorm), dHidden.pointer, inverseRMS: kept.finalInverseRMS.pointer,
            dx: dx.pointer, dw: G + P.finalNorm, rows: T, dim: d)
        let work = BackwardWorkspace(rows: T, config: m.config)
        for li in stride(from: m.blocks.count - 1, through: 0, by: -1) {
            m.blocks[li].backward(dx.pointer, saved: kept.layers[li], layout: layout, rope: m.rope, work: work, gradients: G)
        }
        // Embedding rows receive the gradient of their positions (except the padding token's,
        // as in transformers' nn.Embedding(padding_idx:)).
        let pad = m.config.padTokenId.map(Int32.init)
        for (row, t) in batch.flatMap(\.tokens).enumerated() where t != pad {
            let dst = G + P.embed + Int(t) * d, src = dx.pointer + row * d
            for j in 0..<d { dst[j] += src[j] }
        }
        let count = targets.count
        return BatchLoss(
            mean: loss.sums.reduce(0, +) / Double(max(count, 1)),
            perExampleMean: zip(loss.sums, loss.counts).map { $1 > 0 ? $0 / Double($1) : 0 },
            perExampleSum: loss.sums, tokens: count)
    }

    struct Target {
        let row: Int
        let token: Int32
        let example: Int
    }

    struct ExampleLosses {
        var sums: [Double]
        var counts: [Int]
        init(count: Int) {
            sums = [Double](repeating: 0, count: count)
            counts = [Int](repeating: 0, count: count)
        }
    }

    /// The head and the NLL of each target, in chunks of rows that bound the logits memory. With
    /// `weights`, also the backward of weight·NLL: dlogits = weight · (softmax − onehot), then the
    /// head's backward (dHead into the gradients, dHidden of each target row).
    private func headPass(_ hidden: FloatBuffer, _ targets: [Target], examples: Int, weights: [Float]?, dHidden: FloatBuffer?)
        -> ExampleLosses
    {
        let d = model.config.hiddenSize, V = model.config.vocabSize, head = model.head
        let chunk = 128
        let logits = FloatBuffer(count: chunk * V, zeroed: false)
        let gathered = FloatBuffer(count: chunk * d, zeroed: false)
        let dGathered = FloatBuffer(count: chunk * d, zeroed: false)
        var loss = ExampleLosses(count: examples)
        for c0 in stride(from: 0, to: targets.count, by: chunk) {
            let part = targets[c0..<min(c0 + chunk, targets.count)]
            for (i, t) in part.enumerated() { (gathered.pointer + i * d).update(from: hidden.pointer + t.row * d, count: d) }
            head.forward(gathered.pointer, logits.pointer, rows: part.count)
            for (i, t) in part.enumerated() {
                let lr = logits.pointer + i * V
                loss.sums[t.example] -= Double(lr[Int(t.token)]) - mi_logsumexp(lr, V)
                loss.counts[t.example] += 1
                guard let weights else { continue }
                _ = mi_softmax_inplace(lr, V)
                lr[Int(t.token)] -= 1
                let k = weights[t.example]
                for j in 0..<V { lr[j] *= k }
            }
            guard let dHidden else { continue }
            // Inverts `head.forward(gathered, logits)`.
            head.backward(logits.pointer, x: gathered.pointer, dx: dGathered.pointer, rows: part.count, gradients: gradients.pointer)
            for (i, t) in part.enumerated() {
                let dst = dHidden.pointer + t.row * d, src = dGathered.pointer + i * d
                for j in 0..<d { dst[j] += src[j] }
            }
        }
        return loss
    }

    public func zeroGradients() { gradients.zero() }
}
