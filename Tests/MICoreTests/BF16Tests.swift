import CSupport
import Testing

@testable import MICore

/// bf16 products: operands rounded to bf16 (8 significant bits, unit roundoff 2⁻⁹), sums in f32.
/// A product of two rounded operands is within 2·2⁻⁹ + 2⁻¹⁸ < 2⁻⁸ of the exact one, relatively,
/// and the f32 sum adds at most k·2⁻²⁴ of Σ|aᵢbᵢ|: the bound checked against float64.
@Suite(.serialized) struct BF16ProductTests {
    struct Shape: Sendable, CustomTestStringConvertible {
        let m, k, n: Int
        var testDescription: String { "\(m)×\(k)·\(k)×\(n)" }
    }
    static let shapes = [Shape(m: 1, k: 2, n: 1), Shape(m: 37, k: 77, n: 45), Shape(m: 64, k: 576, n: 100), Shape(m: 9, k: 33, n: 16)]

    func random(_ count: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<count).map { _ in (Float(rng.next() % 200_001) / 100_000 - 1) * scale }
    }

    /// C = A·B three ways, as Linear uses them: B given as [n, k] rows (a weight in x·Wᵀ), B as
    /// [k, n] rows (dy·W), and A given transposed (dyᵀ·x); with and without accumulation.
    @Test(arguments: shapes)
    func productsAreWithinTheBF16BoundOfFloat64(shape: Shape) {
        let (m, k, n) = (shape.m, shape.k, shape.n)
        var rng = SplitMix64(seed: UInt64(m * 1000 + k))
        let a = random(m * k, &rng), bKN = random(k * n, &rng, scale: 0.05), c0 = random(m * n, &rng)
        var aT = [Float](repeating: 0, count: k * m), bNK = [Float](repeating: 0, count: n * k)
        for i in 0..<m { for j in 0..<k { aT[j * m + i] = a[i * k + j] } }
        for i in 0..<k { for j in 0..<n { bNK[j * k + i] = bKN[i * n + j] } }
        for variant in 0..<3 {
            for accumulate in [false, true] {
                let packed = BF16Products.Packed(k: k, n: n)
                if variant == 0 { packed.pack(bNK, ld: k, byRows: true) } else { packed.pack(bKN, ld: n, byRows: false) }
                var c = c0
                if variant == 2 {
                    BF16Products.multiply(aT, lda: m, transposedA: true, rows: m, packed, &c, ldc: n, accumulate: accumulate)
                } else {
                    BF16Products.multiply(a, lda: k, rows: m, packed, &c, ldc: n, accumulate: accumulate)
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var exact = accumulate ? Double(c0[i * n + j]) : 0, magnitude = 0.0
                        for t in 0..<k {
                            let p = Double(a[i * k + t]) * Double(bKN[t * n + j])
                            exact += p
                            magnitude += abs(p)
                        }
                        let bound = (1.0 / 256 + Double(k + 2) * 0x1p-24) * magnitude + 0x1p-23 * abs(exact)
                        worst = max(worst, abs(Double(c[i * n + j]) - exact) / max(bound, 1e-30))
                    }
                }
                #expect(worst <= 1, "variant \(variant), accumulate \(accumulate): \(worst) of the bound")
            }
        }
    }

    /// Small integers are exact in bf16 and their products sum exactly in f32, so every layout
    /// and edge (odd k, a partial last panel, a partial last row tile) must give the exact answer.
    @Test(arguments: shapes)
    func integerProductsAreExact(shape: Shape) {
        let (m, k, n) = (shape.m, shape.k, shape.n)
        var rng = SplitMix64(seed: UInt64(7 + m + k + n))
        let a = (0..<(m * k)).map { _ in Float(Int(rng.next() % 17) - 8) }
        let b = (0..<(n * k)).map { _ in Float(Int(rng.next() % 17) - 8) }
        let packed = BF16Products.Packed(k: k, n: n)
        packed.pack(b, ld: k, byRows: true)
        var c = [Float](repeating: .nan, count: m * n)
        BF16Products.multiply(a, lda: k, rows: m, packed, &c, ldc: n)
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for t in 0..<k { s += a[i * k + t] * b[j * k + t] }
                #expect(c[i * n + j] == s, "(\(i), \(j))")
            }
        }
    }

    /// The AVX512-BF16 kernel and the portable loop round the operands the same way; only the
    /// order of the f32 sums differs.
    @Test(.enabled(if: BF16Products.native, "this CPU has no AVX512-BF16"))
    func nativeKernelAgreesWithThePortableLoop() {
        let (m, k, n) = (29, 301, 70)
        var rng = SplitMix64(seed: 5)
        let a = random(m * k, &rng), b = random(n * k, &rng)
        let packed = BF16Products.Packed(k: k, n: n)
        packed.pack(b, ld: k, byRows: true)
        var fast = [Float](repeating: 0, count: m * n), portable = fast
        BF16Products.multiply(a, lda: k, rows: m, packed, &fast, ldc: n)
        mi_bf16_use_portable(1)
        let packedPortable = BF16Products.Packed(k: k, n: n)
        packedPortable.pack(b, ld: k, byRows: true)
        BF16Products.multiply(a, lda: k, rows: m, packedPortable, &portable, ldc: n)
        mi_bf16_use_portable(0)
        for (x, y) in zip(fast, portable) { #expect(abs(x - y) <= 1e-4 * max(1, abs(y))) }
    }

    /// AMX tiles against the AVX512-BF16 kernel, with a partial block of rows (45 = 32 + 13), an odd
    /// k whose last chunk has 7 of 16 pairs, an odd number of panels and a partial last panel, with
    /// and without accumulation; 8 rows, the fewest the tiles take, and 7, which the AVX512 kernel takes.
    @Test(.enabled(if: mi_cpu_has_amx_bf16() != 0, "this CPU has no AMX tiles (or Linux does not allow them)"))
    func amxTilesAgreeWithTheAVX512Kernel() {
        #expect(BF16Products.kernel == "amx")
        for (m, k, n) in [(45, 301, 70), (8, 64, 16), (7, 40, 33), (64, 576, 192)] {
            var rng = SplitMix64(seed: UInt64(m + k + n))
            let a = random(m * k, &rng), b = random(n * k, &rng), c0 = random(m * n, &rng)
            let packed = BF16Products.Packed(k: k, n: n)
            packed.pack(b, ld: k, byRows: true)
            for accumulate in [false, true] {
                var tiles = c0, vectors = c0
                BF16Products.multiply(a, lda: k, rows: m, packed, &tiles, ldc: n, accumulate: accumulate)
                mi_bf16_use_amx(0)
                BF16Products.multiply(a, lda: k, rows: m, packed, &vectors, ldc: n, accumulate: accumulate)
                mi_bf16_use_amx(1)
                let worst = zip(tiles, vectors).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
                #expect(worst <= 1e-4, "\(m)×\(k)·\(k)×\(n), accumulate \(accumulate): \(worst)")
            }
        }
    }

    @Test func roundingIsToNearestEven() {
        #expect(mi_bf16_from_float(1.0) == 0x3F80)
        #expect(mi_bf16_from_float(Float(bitPattern: 0x3F80_8000)) == 0x3F80) // tie, even stays
        #expect(mi_bf16_from_float(Float(bitPattern: 0x3F81_8000)) == 0x3F82) // tie, odd rounds up
        #expect(mi_bf16_from_float(Float(bitPattern: 0x3F80_8001)) == 0x3F81)
        #expect(mi_bf16_to_float(mi_bf16_from_float(-2.5)) == -2.5)
        #expect(mi_bf16_to_float(mi_bf16_from_float(.nan)).isNaN)
    }
}

/// The default model with bf16 products against the float64 fixtures. Without AVX512-BF16 the
/// portable loop (tested above against the kernel and float64) would take minutes per test.
@Suite(
    .tags(.model), .enabled(if: TestModel.available, "set MI_MODEL to the default GGUF (make test does)"),
    .enabled(if: BF16Products.native, "no AVX512-BF16"), .serialized)
struct BF16ModelTests {
    /// The f32 weights only: the file's blocks would serve small steps with the weights as loaded.
    func model() throws -> LoadedModel {
        let loaded = try LoadedModel(path: try #require(TestModel.path), blockWeights: false)
        loaded.model.compute = .bf16
        return loaded
    }

    /// Per-token log-probabilities over 30 layers with bf16 products: measured at most 0.105 from
    /// float64 (mean 0.014); PyTorch's bf16 autocast on the same tokens is at most 0.163 away (mean
    /// 0.031, bench/peer_bf16_accuracy.py). The checks, 0.25 per token, 0.05 on the mean and 2 % of
    /// each completion's summed log-prob, are ones bf16 autocast itself passes.
    @Test func logProbsStayNearFloat64() throws {
        let loaded = try model()
        let cases = try #require(try Fixture.json("logprobs.json")["cases"] as? [[String: Any]])
        var total = 0.0, tokens = 0
        for c in cases {
            let prompt = try #require(c["prompt"] as? String), completion = try #require(c["completion"] as? String)
            let expected = try #require(c["logprobs"] as? [Double])
            let lp = loaded.model.completionLogProbs([(loaded.tokenizer.encode(prompt), loaded.tokenizer.encode(completion))])[0]
            #expect(lp.count == expected.count)
            for (a, b) in zip(lp, expected) {
                #expect(abs(a - b) < 0.25, "\(a) vs \(b)")
                total += abs(a - b)
                tokens += 1
            }
            let sum = expected.reduce(0, +)
            #expect(abs(lp.reduce(0, +) - sum) <= 0.02 * abs(sum) + 0.1)
        }
        #expect(total / Double(tokens) < 0.05)
    }

    /// Greedy continuations of the fixture prompts, decoded in a batch of 4 (bf16 products; the
    /// file's blocks serve only steps of at most 4 rows), equal transformers' float64 ones.
    @Test func greedyContinuationsMatchTransformers() throws {
        let loaded = try LoadedModel(path: try #require(TestModel.path))
        loaded.model.compute = .bf16
        let (requests, expected) = try Fixture.greedy()
        let together = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 4).generate(requests)
        for i in 0..<requests.count { #expect(together[i].tokens == expected[i], "prompt \(i)") }
    }

    /// Weights are packed in bf16 once and packed again after an optimizer step: the model then
    /// scores as a new model made from the updated weights does, and not as before the step.
    @Test func packedWeightsFollowTheOptimizer() throws {
        let loaded = try model()
        let m = loaded.model
        let example = TrainingExample(prompt: loaded.tokenizer.encode("Name a colour."), completion: loaded.tokenizer.encode(" Blue."))
        let pair = [(example.prompt, example.completion)]
        let before = m.completionLogProbs(pair)[0]
        let bp = Backpropagation(model: m)
        bp.accumulate([example])
        AdamW(count: m.parameters.count, hyper: AdamW.Hyperparameters()).update(parameters: m.parameters.buffer, gradients: bp.gradients, lr: 1e-3)
        let after = m.completionLogProbs(pair)[0]
        let fresh = LlamaModel(parameters: m.parameters)
        fresh.compute = .bf16
        #expect(after == fresh.completionLogProbs(pair)[0])
        #expect(after.reduce(0, +) > before.reduce(0, +) + 0.1, "one step up the gradient raises the example's log-prob")
    }

    /// A model large next to memory packs backward's weights into a scratch per shape instead of
    /// keeping them (2 bytes less per parameter): the gradients are the same to the bit.
    @Test func backwardFromScratchPacksEqualsKeptPacks() throws {
        let loaded = try model()
        let example = TrainingExample(prompt: loaded.tokenizer.encode("Name a colour."), completion: loaded.tokenizer.encode(" Blue, like the sky."))
        func gradients(keep: Bool) -> [Float] {
            let m = LlamaModel(parameters: loaded.model.parameters)
            m.compute = .bf16
            _ = m.completionLogProbs([(example.prompt, example.completion)])
            m.keepsBF16BackwardPacks = keep
            let bp = Backpropagation(model: m)
            bp.accumulate([example, example])
            return Array(UnsafeBufferPointer(start: bp.gradients.pointer, count: m.parameters.count))
        }
        let kept = gradients(keep: true), scratch = gradients(keep: false)
        #expect(kept == scratch)
        #expect(kept.contains { $0 != 0 })
        let gb = 1 << 30
        #expect(BF16Weights.keepsBackwardPacks(parameters: 135_000_000, memory: 24 * gb))
        #expect(!BF16Weights.keepsBackwardPacks(parameters: 1_100_000_000, memory: 24 * gb))
        #expect(BF16Weights.keepsBackwardPacks(parameters: 1_100_000_000, memory: 64 * gb))
    }

    /// One training batch: the loss within 2e-2 of float64; the gradient norms of all tensors
    /// within 1 % at the median and 10 % at worst (measured: 0.17 % and 5.4 %, the worst an RMSNorm
    /// weight, whose gradient sums many terms that cancel; bf16 rounds the backward's operands too).
    @Test func lossAndGradientsStayNearFloat64() throws {
        let f = try Fixture.json("training.json")
        let m = try model().model
        let examples = (f["examples"] as! [[String: Any]]).map {
            TrainingExample(prompt: ($0["prompt_ids"] as! [Int]).map(Int32.init), completion: ($0["completion_ids"] as! [Int]).map(Int32.init))
        }
        let bp = Backpropagation(model: m)
        let loss = bp.accumulate(examples)
        let expected = f["batch"] as! [String: Any]
        #expect(abs(loss.mean - (expected["mean_loss"] as! Double)) < 2e-2)
        let norms = expected["grad_norms"] as! [String: Double]
        var errors: [Double] = []
        for e in m.parameters.entries {
            let g = UnsafeBufferPointer(start: bp.gradients.pointer + e.offset, count: e.count)
            let norm = g.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let want = try #require(norms[e.name])
            errors.append(abs(norm - want) / want)
        }
        errors.sort()
        #expect(errors[errors.count / 2] < 0.01)
        #expect(errors.last! < 0.1)
    }
}
