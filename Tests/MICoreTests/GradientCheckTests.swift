import MICore
import MIStages
import Testing

/// Gradients of the whole model (embedding, RMSNorm, RoPE, GQA attention, SwiGLU, tied head, and
/// Qwen2's q/k/v biases) against central finite differences of the loss computed by the separate
/// inference path.
@Suite struct GradientCheckTests {
    static func tinyModel(tied: Bool, seed: UInt64, attentionBias: Bool = false) -> LlamaModel {
        var config = LlamaConfig.tiny
        config.tieWordEmbeddings = tied
        if attentionBias {
            config.architecture = "qwen2"
            config.attentionBias = true
        }
        let params = LlamaParameters(config: config)
        var rng = SplitMix64(seed: seed)
        for e in params.entries {
            let p = params.pointer(e.offset)
            for i in 0..<e.count {
                let u = Float(rng.nextUnit())
                p[i] = e.name.hasSuffix(".bias") ? (u - 0.5) * 0.4 : e.shape.count == 1 ? 0.8 + 0.4 * u : (u - 0.5) * 0.6
            }
        }
        return LlamaModel(parameters: params)
    }

    static let batch = [
        TrainingExample(prompt: [1, 5, 9, 2], completion: [7, 3, 3, 11, 0]),
        TrainingExample(prompt: [4], completion: [8, 12, 6]),
    ]

    /// Mean completion NLL over the batch, from the inference forward pass.
    static func loss(_ model: LlamaModel) -> Double {
        let lps = model.completionLogProbs(batch.map { ($0.prompt, $0.completion) })
        let all = lps.flatMap { $0 }
        return -all.reduce(0, +) / Double(all.count)
    }

    @Test(arguments: ["tied", "untied", "qkv-bias"])
    func analyticGradientsMatchFiniteDifferences(variant: String) {
        let tied = variant != "untied"
        let model = Self.tinyModel(tied: tied, seed: tied ? 1 : 2, attentionBias: variant == "qkv-bias")
        #expect(model.parameters.entries.contains { $0.name.hasSuffix("k_proj.bias") } == (variant == "qkv-bias"))
        let bp = Backpropagation(model: model)
        let result = bp.accumulate(Self.batch)
        #expect(abs(result.mean - Self.loss(model)) < 1e-5, "training and inference forward passes agree")
        var rng = SplitMix64(seed: 9)
        let h: Float = 1e-2
        var checked = 0
        for e in model.parameters.entries {
            for _ in 0..<6 {
                let i = e.offset + Int(rng.next() % UInt64(e.count))
                let p = model.parameters.buffer
                let saved = p[i]
                p[i] = saved + h
                let up = Self.loss(model)
                p[i] = saved - h
                let down = Self.loss(model)
                p[i] = saved
                let numeric = (up - down) / Double(2 * h)
                let analytic = Double(bp.gradients[i])
                #expect(
                    abs(numeric - analytic) <= 2e-4 + 2e-2 * abs(analytic), "\(e.name)[\(i - e.offset)]: numeric \(numeric), analytic \(analytic)")
                checked += 1
            }
        }
        #expect(checked == model.parameters.entries.count * 6)
    }

    @Test func gradientsAccumulateAndScale() {
        let model = Self.tinyModel(tied: true, seed: 3)
        let a = Backpropagation(model: model)
        a.accumulate(Self.batch)
        let b = Backpropagation(model: model)
        b.accumulate(Self.batch, scale: 0.5)
        b.accumulate(Self.batch, scale: 0.5)
        for i in stride(from: 0, to: a.gradients.count, by: 97) {
            #expect(abs(a.gradients[i] - b.gradients[i]) <= 1e-6 + 1e-4 * abs(a.gradients[i]))
        }
    }
}

extension LlamaConfig {
    /// A tiny configuration for gradient checks: GQA (4 query heads over 2 key/value heads).
    static let tiny = LlamaConfig(
        architecture: "llama", hiddenSize: 32, intermediateSize: 48, numHiddenLayers: 2,
        numAttentionHeads: 4, numKeyValueHeads: 2, vocabSize: 16, maxPositionEmbeddings: 64,
        rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: true, ropeScaling: nil)
}

/// The weighted form used by DPO: gradients of Σ w_e · NLL_e with the weights `DPORun.objective`
/// computes from the forward pass, against finite differences of its loss (plain DPO, and DPO
/// with the chosen completions' NLL per token added, RPO).
@Suite struct DPOGradientTests {
    @Test(arguments: [0.0, 0.7])
    func dpoWeightsGiveTheGradientOfTheDPOLoss(nllWeight: Double) {
        let model = GradientCheckTests.tinyModel(tied: true, seed: 5)
        let pairs: [(prompt: [Int32], chosen: [Int32], rejected: [Int32])] = [([1, 5, 9], [7, 3], [2, 2, 4]), ([4, 6], [8], [12, 6, 1])]
        let beta = 0.5
        let tokens = pairs.flatMap { [$0.chosen.count, $0.rejected.count] }
        func nlls(_ m: LlamaModel) -> [Double] {
            m.completionLogProbs(pairs.flatMap { [($0.prompt, $0.chosen), ($0.prompt, $0.rejected)] }).map { -$0.reduce(0, +) }
        }
        let start = nlls(model) // reference log-probabilities: the model itself, perturbed below
        let reference = (0..<pairs.count).map { (chosen: -start[2 * $0], rejected: -start[2 * $0 + 1]) }
        func loss(_ n: [Double]) -> Double {
            DPORun.objective(nll: n, tokens: tokens, reference: reference, beta: beta, nllWeight: nllWeight).loss
        }
        // Move away from the reference so that σ(z) ≠ 1/2.
        let p = model.parameters.buffer
        for i in stride(from: 0, to: p.count, by: 3) { p[i] += 0.05 }
        let bp = Backpropagation(model: model)
        let examples = pairs.flatMap {
            [TrainingExample(prompt: $0.prompt, completion: $0.chosen), TrainingExample(prompt: $0.prompt, completion: $0.rejected)]
        }
        var seen: [Int] = []
        bp.accumulate(examples, scale: 1) { nll, counts in
            seen = counts
            return DPORun.objective(nll: nll, tokens: counts, reference: reference, beta: beta, nllWeight: nllWeight).weights
        }
        #expect(seen == tokens, "the token counts the weights receive are the completions' lengths")
        let now = nlls(model)
        let chosenNLL = (now[0] + now[2]) / Double(tokens[0] + tokens[2])
        let o = DPORun.objective(nll: now, tokens: tokens, reference: reference, beta: beta, nllWeight: nllWeight)
        #expect(abs(o.chosenNLL - chosenNLL) < 1e-12)
        #expect(
            abs(o.loss - nllWeight * chosenNLL - DPORun.objective(nll: now, tokens: tokens, reference: reference, beta: beta, nllWeight: 0).loss)
                < 1e-12)
        var rng = SplitMix64(seed: 11)
        let h: Float = 1e-2
        for e in model.parameters.entries {
            for _ in 0..<3 {
                let i = e.offset + Int(rng.next() % UInt64(e.count))
                let saved = p[i]
                p[i] = saved + h
                let up = loss(nlls(model))
                p[i] = saved - h
                let down = loss(nlls(model))
                p[i] = saved
                let numeric = (up - down) / Double(2 * h)
                let analytic = Double(bp.gradients[i])
                #expect(abs(numeric - analytic) <= 1e-4 + 2e-2 * abs(analytic), "\(e.name): \(numeric) vs \(analytic)")
            }
        }
    }
}

#if canImport(Glibc)
    import Glibc
#endif
