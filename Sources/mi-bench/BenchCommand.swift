import ArgumentParser
import COpenBLAS
import MICLI
import MICore
import MIStream
import MITrainingCLI

#if canImport(Glibc)
    import Glibc
#endif

/// Timings of the model core on one machine, as one JSON object on stdout. The sgemm peak is
/// measured in the same run, so ratios against it are comparable across machines.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-bench",
        abstract: "Measure sgemm peak, forward pass, decoding and load time of a model.")

    @Option(help: "A .gguf file.")
    var model: String

    @Option(help: "Sequences in the forward benchmark.")
    var batch = 8

    @Option(help: "Tokens per sequence in the forward benchmark.")
    var length = 256

    @Option(help: "Tokens decoded per sequence in the decode benchmarks.")
    var decodeTokens = 64

    @Option(help: "Repetitions; the best time is reported.")
    var repeats = 3

    @OptionGroup var computeOptions: ComputeOptions
    @OptionGroup var common: CommonOptions

    func run() throws {
        common.apply(program: "mi-bench")
        computeOptions.apply()
        if let warning = BLASRuntime.weakerCoreWarning() { Log.warning(warning) }
        try StageRunner.run {
            var o = JSONObject()
            o["openblas_core"] = .string(BLASRuntime.coreName)
            o["threads"] = .number(JSONNumber(BLAS.threads))
            o["sgemm_gflops"] = num(sgemmPeak())
            o["compute"] = .string(ComputePrecision.processDefault.rawValue)
            o["bf16_native"] = .bool(BF16Products.native)
            o["bf16_kernel"] = .string(BF16Products.kernel)
            if BF16Products.native { o["bf16_gemm_gflops"] = num(bf16Peak()) }

            let t0 = now()
            let loaded = try LoadedModel(path: model)
            o["load_s"] = num(now() - t0)

            // Forward: batch × length tokens of real text, one packed pass, no logits.
            let text = String(repeating: "The quick brown fox jumps over the lazy dog, and 3 geese fly south. ", count: 64)
            let ids = Array(loaded.tokenizer.encode(text).prefix(length))
            let flops = forwardFlops(loaded.model.config, tokens: batch * length, sequenceLength: length)
            let forward = best(repeats) {
                let cache = KVCache(config: loaded.model.config, slots: batch, capacity: length)
                _ = loaded.model.forward((0..<batch).map { LlamaModel.Segment(slot: $0, tokens: ids) }, cache: cache)
            }
            o["forward_tokens"] = .number(JSONNumber(batch * length))
            o["forward_s"] = num(forward)
            o["forward_tokens_per_s"] = num(Double(batch * length) / forward)
            o["forward_gflops"] = num(flops / forward / 1e9)

            // Decode: greedy, fixed number of new tokens, a short chat prompt per sequence.
            let prompt = loaded.tokenizer.encode(loaded.chat?.prompt(user: "Tell me a story about a lighthouse.") ?? "Once upon a time")
            for b in [1, 16] {
                var p = SamplingParameters()
                p.temperature = 0
                p.maxTokens = decodeTokens
                let requests = [GenerationRequest](repeating: GenerationRequest(prompt: prompt, sampling: p), count: b)
                let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: b)
                let t = best(max(1, repeats - 1)) { _ = g.generate(requests) }
                o["decode_b\(b)_tokens_per_s"] = num(Double(b * decodeTokens) / t)
            }
            // Training: one SFT step (forward, backward, AdamW) on `length` tokens, and one DPO
            // step on a pair of `length`-token sequences, on a fresh f32 copy of the model.
            let trainee = try LoadedModel(path: model, blockWeights: false).model
            let bp = Backpropagation(model: trainee)
            let opt = AdamW(count: trainee.parameters.count, hyper: AdamW.Hyperparameters())
            let half = length / 2
            let example = TrainingExample(prompt: Array(ids.prefix(half)), completion: Array(ids[half..<length]))
            let sft = best(repeats) {
                bp.zeroGradients()
                bp.accumulate([example])
                opt.update(parameters: trainee.parameters.buffer, gradients: bp.gradients, lr: 1e-6)
            }
            o["sft_step_tokens"] = .number(JSONNumber(length))
            o["sft_step_s"] = num(sft)
            let trainFlops =
                3 * forwardFlops(trainee.config, tokens: length, sequenceLength: length)
                + 6 * Double(length / 2) * Double(trainee.config.vocabSize * trainee.config.hiddenSize)
            o["sft_step_gflops"] = num(trainFlops / sft / 1e9)
            let rejected = TrainingExample(prompt: example.prompt, completion: Array(ids[half..<length].reversed()))
            let dpo = best(repeats) {
                bp.zeroGradients()
                bp.accumulate([example, rejected], scale: 1) { nll, _ in
                    let z = 0.1 * (nll[1] - nll[0])
                    let w = 0.1 * (1 - 1 / (1 + exp(-z)))
                    return [w, -w]
                }
                opt.update(parameters: trainee.parameters.buffer, gradients: bp.gradients, lr: 1e-6)
            }
            o["dpo_step_s"] = num(dpo)
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            o["peak_rss_mb"] = num(Double(usage.ru_maxrss) / 1024)
            let out = try JSONLWriter(path: "-")
            try out.write(o)
            try out.commit()
        }
    }

    func num(_ x: Double) -> JSONValue { JSONNumber((x * 1000).rounded() / 1000).map(JSONValue.number) ?? .null }

    func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func best(_ n: Int, _ body: () -> Void) -> Double {
        var b = Double.infinity
        for _ in 0..<n {
            let t = now()
            body()
            b = min(b, now() - t)
        }
        return b
    }

    /// Square operands A, B and a result C for the peak measurements.
    func squareOperands(_ n: Int) -> (a: FloatBuffer, b: FloatBuffer, c: FloatBuffer) {
        let a = FloatBuffer(count: n * n), b = FloatBuffer(count: n * n), c = FloatBuffer(count: n * n)
        for i in 0..<(n * n) {
            a[i] = Float(i % 7) * 0.01
            b[i] = Float(i % 5) * 0.01
        }
        return (a, b, c)
    }

    /// sgemm GFLOP/s on square 2048 matrices (best of a few).
    func sgemmPeak() -> Double {
        let n = 2048, (a, b, c) = squareOperands(n)
        let t = best(5) { BLAS.matmul(a.pointer, b.pointer, c.pointer, m: n, n: n, k: n) }
        return 2 * Double(n * n * n) / t / 1e9
    }

    /// The bf16 products' GFLOP/s on square 2048 matrices, B packed beforehand (best of a few).
    func bf16Peak() -> Double {
        let n = 2048, (a, b, c) = squareOperands(n)
        let packed = BF16Products.Packed(k: n, n: n)
        packed.pack(b.pointer, ld: n, byRows: false)
        let t = best(5) { BF16Products.multiply(a.pointer, lda: n, rows: n, packed, c.pointer, ldc: n) }
        return 2 * Double(n * n * n) / t / 1e9
    }

    /// Matrix-product FLOPs of a forward pass without the output head: linear layers plus attention.
    func forwardFlops(_ c: LlamaConfig, tokens: Int, sequenceLength: Int) -> Double {
        let d = Double(c.hiddenSize), hd = Double(c.headDim)
        let q = Double(c.numAttentionHeads) * hd, kv = Double(c.numKeyValueHeads) * hd, f = Double(c.intermediateSize)
        let linear = 2 * Double(tokens) * (d * q + 2 * d * kv + q * d + 3 * d * f)
        let attention = 2 * 2 * Double(tokens) * Double(sequenceLength) * q // full score and value products
        return Double(c.numHiddenLayers) * (linear + attention)
    }
}
