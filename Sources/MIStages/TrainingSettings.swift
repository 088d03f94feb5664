import MICore
import MIStream

/// Optimizer and schedule settings shared by mi-sft and mi-dpo.
public struct TrainingSettings: Sendable, Equatable {
    public var epochs = 1
    /// 0: as many steps as the epochs need.
    public var maxSteps = 0
    public var batchSize = 1
    public var gradAccum = 1
    public var lr = 1e-5
    public var schedule = LearningRateSchedule.Kind.constant
    public var warmupRatio = 0.0
    public var decayRatio = 0.1
    public var minLRRatio = 0.0
    public var adam = AdamW.Hyperparameters()
    /// 0 turns clipping off.
    public var gradClip = 1.0
    public var maxLength = 2048
    public var seed: UInt64 = 42
    public var shuffle = false
    public var saveOptimizer = false
    public var saveEvery = 0
    /// Stop after this many steps with a resumable checkpoint (0: run to the end).
    public var stopAfter = 0
    public var dtype = SafetensorsFile.DType.f32
    /// The precision of the products (the process default when the settings are made).
    public var compute = ComputePrecision.processDefault

    public init() {}

    /// Every setting that changes the result, for refusing a resume with different settings.
    /// The settings that decide the trained weights, by flag name; `fingerprint` joins the values.
    public var named: [(String, String)] {
        [
            ("epochs", "\(epochs)"), ("max_steps", "\(maxSteps)"), ("batch_size", "\(batchSize)"), ("grad_accum", "\(gradAccum)"),
            ("lr", "\(lr)"), ("schedule", schedule.rawValue), ("warmup_ratio", "\(warmupRatio)"), ("decay_ratio", "\(decayRatio)"),
            ("min_lr_ratio", "\(minLRRatio)"), ("beta1", "\(adam.beta1)"), ("beta2", "\(adam.beta2)"), ("eps", "\(adam.eps)"),
            ("weight_decay", "\(adam.weightDecay)"), ("grad_clip", "\(gradClip)"), ("max_length", "\(maxLength)"), ("seed", "\(seed)"),
            ("shuffle", "\(shuffle)"), ("compute", compute.rawValue),
        ]
    }

    public var fingerprint: String { named.map(\.1).joined(separator: "|") }

    /// Optimizer steps for `count` examples.
    public func totalSteps(examples count: Int) -> Int {
        let perEpoch = (count + batchSize * gradAccum - 1) / (batchSize * gradAccum)
        let all = perEpoch * epochs
        return maxSteps > 0 ? min(maxSteps, all) : all
    }

    /// Example indices in training order: input order, or a permutation per epoch from the seed.
    public func order(examples count: Int, epoch: Int) -> [Int] {
        var idx = Array(0..<count)
        guard shuffle else { return idx }
        var rng = SplitMix64(seed: seed &+ UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15)
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            idx.swapAt(i, j)
        }
        return idx
    }
}

/// FNV-1a over bytes: fingerprints of inputs recorded in trainer_state.json.
public struct Fingerprint {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}
    public mutating func add<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }
    public mutating func add(_ s: String) {
        add(s.utf8)
        add([0])
    }
    public var hex: String { String(value, radix: 16) }

    /// Whether `key` falls in a fixed `fraction` of all keys (by its hash): a split that does not
    /// depend on order, for held-out prompts and sampled records.
    public static func selects(_ key: String, fraction: Double) -> Bool {
        var f = Fingerprint()
        f.add(key)
        return Double(f.value % 1_000_000) < fraction * 1_000_000
    }
}
