import Foundation
import MICore
import Testing

/// AdamW against torch.optim.AdamW, step by step.
@Suite struct AdamWTests {
    @Test func matchesTorch() throws {
        let f = try Fixture.json("adamw.json")
        let initial = (f["initial"] as! [Double]).map(Float.init)
        var hyper = AdamW.Hyperparameters()
        hyper.beta1 = f["beta1"] as! Double
        hyper.beta2 = f["beta2"] as! Double
        hyper.eps = f["eps"] as! Double
        hyper.weightDecay = f["weight_decay"] as! Double
        let params = FloatBuffer(initial)
        let opt = AdamW(count: initial.count, hyper: hyper)
        for (g, expected) in zip(f["gradients"] as! [[Double]], f["after_each_step"] as! [[Double]]) {
            opt.update(parameters: params, gradients: FloatBuffer(g.map(Float.init)), lr: f["lr"] as! Double)
            for (a, b) in zip(params.array, expected) {
                #expect(abs(Double(a) - b) <= 2e-7 * max(1, abs(b)), "\(a) vs \(b) at step \(opt.step)")
            }
        }
    }
}

/// The probe's AdamW variants agree with the full update: the parameters-only step stores the
/// same parameters without touching the moments, and the step's dot product equals the one taken
/// over the parameters the full update stores.
@Suite struct AdamWProbeStepTests {
    @Test(arguments: [0.0, 0.1])
    func variantsAgreeWithTheFullUpdate(weightDecay: Double) throws {
        var rng = SplitMix64(seed: 11)
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in (Float(rng.next() % 20001) / 10000 - 1) * scale } }
        let n = 300_001 // more than one chunk per core, odd length for the vector tails
        var hyper = AdamW.Hyperparameters()
        hyper.weightDecay = weightDecay
        let p0 = random(n, 0.1), g1 = random(n, 1e-2), g2 = random(n, 1e-2), d = random(n, 1)
        // Moments from one real step, so the next is not the first.
        let full = AdamW(count: n, hyper: hyper)
        let p = FloatBuffer(p0)
        full.update(parameters: p, gradients: FloatBuffer(g1), lr: 1e-3)
        let afterOne = p.array, m1 = full.m.array, v1 = full.v.array

        let gradients = FloatBuffer(g2), direction = FloatBuffer(d)
        let dot = full.stepDot(parameters: p, gradients: gradients, lr: 5e-4, direction: direction)
        #expect(p.array == afterOne && full.m.array == m1 && full.step == 1)

        full.updateParametersOnly(parameters: p, gradients: gradients, lr: 5e-4)
        let paramsOnly = p.array
        #expect(full.m.array == m1 && full.v.array == v1 && full.step == 1)

        p.copy(from: FloatBuffer(afterOne))
        full.update(parameters: p, gradients: gradients, lr: 5e-4)
        #expect(p.array == paramsOnly)
        var expected = 0.0
        for i in 0..<n { expected += Double(d[i]) * Double(paramsOnly[i] - afterOne[i]) }
        #expect(abs(dot - expected) <= 1e-6 * abs(expected), "\(dot) vs \(expected)")
        #expect(expected != 0)
    }
}

/// Loss, gradients and two AdamW steps on the default model against PyTorch in float64.
@Suite(.tags(.model), .enabled(if: TestModel.available, "set MI_MODEL to the default GGUF (make test does)"), .serialized)
struct TrainingTests {
    /// f32 against float64 over 30 layers: losses agree to ~1e-5; the contract is 2e-3 per
    /// example mean loss and 2e-2 per sequence log-probability sum.
    static let lossTolerance = 2e-3
    static let sumTolerance = 2e-2

    func examples(_ f: [String: Any]) -> [TrainingExample] {
        (f["examples"] as! [[String: Any]]).map {
            TrainingExample(prompt: ($0["prompt_ids"] as! [Int]).map(Int32.init), completion: ($0["completion_ids"] as! [Int]).map(Int32.init))
        }
    }

    @Test func lossAndGradientNormsMatchPyTorch() throws {
        let path = try #require(TestModel.path)
        let f = try Fixture.json("training.json")
        let model = try LoadedModel(path: path).model
        let bp = Backpropagation(model: model)
        let loss = bp.accumulate(examples(f))
        let expected = f["batch"] as! [String: Any]
        #expect(abs(loss.mean - (expected["mean_loss"] as! Double)) < Self.lossTolerance)
        for (a, b) in zip(loss.perExampleMean, expected["example_mean_loss"] as! [Double]) { #expect(abs(a - b) < Self.lossTolerance) }
        let norms = expected["grad_norms"] as! [String: Double]
        #expect(norms.count == model.parameters.entries.count)
        for e in model.parameters.entries {
            let g = UnsafeBufferPointer(start: bp.gradients.pointer + e.offset, count: e.count)
            let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let want = try #require(norms[e.name], "\(e.name)")
            #expect(abs(norm - want) <= 1e-3 * want + 1e-7, "\(e.name): \(norm) vs \(want)")
        }
    }

    @Test func twoAdamWStepsMatchPyTorch() throws {
        let path = try #require(TestModel.path)
        let f = try Fixture.json("training.json")
        let model = try LoadedModel(path: path).model
        let batch = examples(f)
        let bp = Backpropagation(model: model)
        var hyper = AdamW.Hyperparameters()
        hyper.weightDecay = 0
        let opt = AdamW(count: model.parameters.count, hyper: hyper)
        for example in batch {
            bp.zeroGradients()
            bp.accumulate([example])
            opt.update(parameters: model.parameters.buffer, gradients: bp.gradients, lr: 1e-5)
        }
        let sft = f["sft"] as! [String: Any]
        let lps = model.completionLogProbs(batch.map { ($0.prompt, $0.completion) })
        for (i, lp) in lps.enumerated() {
            let sum = lp.reduce(0, +)
            #expect(abs(sum - (sft["example_logprob_sum"] as! [Double])[i]) < Self.sumTolerance, "example \(i) sum \(sum)")
            #expect(abs(-sum / Double(lp.count) - (sft["example_mean_loss"] as! [Double])[i]) < Self.lossTolerance)
        }
    }
}
