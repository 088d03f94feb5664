import ArgumentParser
import MICore
import MIStages

extension LearningRateSchedule.Kind: ExpressibleByArgument {}

/// Optimizer, schedule and batching flags of mi-sft and mi-dpo.
public struct TrainingOptions: ParsableArguments {
    @Option(help: "Passes over the data.") public var epochs = 1
    @Option(help: "Stop after this many optimizer steps (0: all).") public var maxSteps = 0
    @Option(help: "Examples per forward/backward pass.") public var batchSize = 1
    @Option(help: "Batches accumulated per optimizer step.") public var gradAccum = 1
    @Option(help: "Peak learning rate.") public var lr = 1e-5
    @Option(help: "constant, cosine or wsd (warmup-stable-decay).") public var schedule = LearningRateSchedule.Kind.constant
    @Option(help: "Fraction of steps spent warming up.") public var warmupRatio = 0.0
    @Option(help: "wsd: fraction of steps spent decaying.") public var decayRatio = 0.1
    @Option(help: "cosine, wsd: final learning rate as a fraction of the peak.") public var minLrRatio = 0.0
    @Option(help: "AdamW decoupled weight decay.") public var weightDecay = 0.0
    @Option(help: "AdamW beta1.") public var beta1 = 0.9
    @Option(help: "AdamW beta2.") public var beta2 = 0.999
    @Option(help: "AdamW epsilon.") public var eps = 1e-8
    @Option(help: "Clip the global gradient norm to this (0: off).") public var gradClip = 1.0
    @Option(help: "Longest sequence in tokens; longer completions are cut (and counted).") public var maxLength = 2048
    @Option(help: "Seed for shuffling.") public var seed: UInt64 = 42
    @Flag(inversion: .prefixedNo, help: "Shuffle examples each epoch (default: input order).") public var shuffle = false
    @Flag(help: "Keep the AdamW state in the final checkpoint.") public var saveOptimizer = false
    @Option(help: "Also write a resumable checkpoint every N steps (0: only at the end).") public var saveEvery = 0
    @Option(help: "Weights in the final checkpoint: f32 or bf16.") public var dtype = "f32"
    @Option(help: "Stop after N steps, leaving a checkpoint that --resume continues (0: run to the end).") public var stopAfter = 0

    public init() {}

    public func validate() throws {
        if epochs < 1 || batchSize < 1 || gradAccum < 1 { throw ValidationError("--epochs, --batch-size and --grad-accum must be >= 1") }
        if !(lr > 0) { throw ValidationError("--lr must be > 0") }
        if !(0..<1).contains(beta1) || !(0..<1).contains(beta2) || !(eps > 0) { throw ValidationError("betas must be in [0, 1) and --eps > 0") }
        if weightDecay < 0 || gradClip < 0 || maxSteps < 0 || saveEvery < 0 || stopAfter < 0 {
            throw ValidationError("negative values are not allowed here")
        }
        if !(0...1).contains(warmupRatio) || !(0...1).contains(decayRatio) || !(0...1).contains(minLrRatio) {
            throw ValidationError("ratios must be in [0, 1]")
        }
        if maxLength < 2 { throw ValidationError("--max-length must be >= 2") }
        if dtype != "f32" && dtype != "bf16" { throw ValidationError("--dtype must be f32 or bf16") }
    }

    public func settings() throws -> TrainingSettings {
        var s = TrainingSettings()
        s.epochs = epochs
        s.maxSteps = maxSteps
        s.batchSize = batchSize
        s.gradAccum = gradAccum
        s.lr = lr
        s.schedule = schedule
        s.warmupRatio = warmupRatio
        s.decayRatio = decayRatio
        s.minLRRatio = minLrRatio
        s.adam.weightDecay = weightDecay
        s.adam.beta1 = beta1
        s.adam.beta2 = beta2
        s.adam.eps = eps
        s.gradClip = gradClip
        s.maxLength = maxLength
        s.seed = seed
        s.shuffle = shuffle
        s.saveOptimizer = saveOptimizer
        s.saveEvery = saveEvery
        s.dtype = dtype == "bf16" ? .bf16 : .f32
        s.stopAfter = stopAfter
        return s
    }
}
