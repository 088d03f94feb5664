import MICore
import MIStream
#if canImport(Glibc)
import Glibc
#endif

/// Direct preference optimisation of a model on (prompt, chosen, rejected) pairs, with the sigmoid
/// DPO loss  −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))])  (Rafailov et al.;
/// TRL's default), averaged over the pairs of a batch. The reference log-probabilities are those
/// of the starting model, computed once per pair before training, so no second copy is held.
public final class DPORun {
    public let loaded: LoadedModel
    public let settings: TrainingSettings
    public let beta: Double
    public let out: String
    public var metricsPath: String?

    public struct Pair {
        public var prompt: [Int32]
        public var chosen: [Int32]
        public var rejected: [Int32]
        public var referenceChosen = 0.0
        public var referenceRejected = 0.0
    }

    public struct Pairs {
        public var items: [Pair]
        public var truncated: Int
        public var fingerprint: String
    }

    public init(model: LoadedModel, settings: TrainingSettings, beta: Double, out: String) {
        loaded = model
        self.settings = settings
        self.beta = beta
        self.out = out
    }

    /// Reads pair records; the prompt is a user message, chosen and rejected are responses.
    public static func readPairs(_ reader: RecordReader, model: LoadedModel, maxLength: Int) throws -> Pairs {
        guard let chat = model.chat else { throw StageFailure.usage("\(model.path): the model has no chat template") }
        var items: [Pair] = []
        var truncated = 0
        var fp = Fingerprint()
        while let r = try reader.next() {
            let user: String, chosen: String, rejected: String
            do {
                user = try r.object.string("prompt")
                chosen = try r.object.string("chosen")
                rejected = try r.object.string("rejected")
            } catch {
                try reader.reject(r, error.description)
                continue
            }
            let p = model.tokenizer.encode(chat.prompt(user: user))
            var c = model.tokenizer.encode(chat.completion(chosen)), x = model.tokenizer.encode(chat.completion(rejected))
            if p.count + max(c.count, x.count) > maxLength {
                truncated += 1
                c = Array(c.prefix(max(0, maxLength - p.count)))
                x = Array(x.prefix(max(0, maxLength - p.count)))
            }
            if c.isEmpty || x.isEmpty { try reader.reject(r, "prompt longer than --max-length"); continue }
            fp.add(user); fp.add(chosen); fp.add(rejected)
            items.append(Pair(prompt: p, chosen: c, rejected: x))
        }
        return Pairs(items: items, truncated: truncated, fingerprint: fp.hex)
    }

    /// Log-probabilities of chosen and rejected under the starting model.
    public func computeReference(_ pairs: inout Pairs, batch: Int = 8) {
        for b0 in stride(from: 0, to: pairs.items.count, by: batch) {
            let part = pairs.items[b0..<min(b0 + batch, pairs.items.count)]
            let seqs = part.flatMap { [($0.prompt, $0.chosen), ($0.prompt, $0.rejected)] }
            let lps = loaded.model.completionLogProbs(seqs)
            for (i, _) in part.enumerated() {
                pairs.items[b0 + i].referenceChosen = lps[2 * i].reduce(0, +)
                pairs.items[b0 + i].referenceRejected = lps[2 * i + 1].reduce(0, +)
            }
        }
    }

    public func run(_ pairs: Pairs, resume: Bool) throws {
        let loop = TrainingLoop(model: loaded, settings: settings, out: out, stage: "dpo",
                                dataFingerprint: pairs.fingerprint, itemCount: pairs.items.count)
        loop.metricsPath = metricsPath
        loop.stateExtras["beta"] = JSONNumber(beta).map(JSONValue.number) ?? .null
        let beta = self.beta
        try loop.run(resume: resume) { items, bp, scale in
            let batch = items.map { pairs.items[$0] }
            let examples = batch.flatMap {
                [TrainingExample(prompt: $0.prompt, completion: $0.chosen), TrainingExample(prompt: $0.prompt, completion: $0.rejected)]
            }
            var stats = (loss: 0.0, chosen: 0.0, rejected: 0.0, accuracy: 0.0)
            let n = Double(batch.count)
            let result = bp.accumulate(examples, scale: scale) { nll, _ in
                // ∂L/∂NLL(chosen) = β(1 − σ(z))/B and ∂L/∂NLL(rejected) = −β(1 − σ(z))/B.
                var weights: [Double] = []
                for (i, p) in batch.enumerated() {
                    let chosenReward = beta * (-nll[2 * i] - p.referenceChosen)
                    let rejectedReward = beta * (-nll[2 * i + 1] - p.referenceRejected)
                    let z = chosenReward - rejectedReward
                    let sigma = 1 / (1 + exp(-z))
                    stats.loss += (z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z))) / n
                    stats.chosen += chosenReward / n
                    stats.rejected += rejectedReward / n
                    stats.accuracy += (chosenReward > rejectedReward ? 1 : 0) / n
                    weights.append(beta * (1 - sigma) / n)
                    weights.append(-beta * (1 - sigma) / n)
                }
                return weights
            }
            var m = JSONObject()
            m["loss"] = JSONNumber(stats.loss).map(JSONValue.number) ?? .null
            m["chosen_reward"] = JSONNumber(stats.chosen).map(JSONValue.number) ?? .null
            m["rejected_reward"] = JSONNumber(stats.rejected).map(JSONValue.number) ?? .null
            m["reward_margin"] = JSONNumber(stats.chosen - stats.rejected).map(JSONValue.number) ?? .null
            m["accuracy"] = JSONNumber(stats.accuracy).map(JSONValue.number) ?? .null
            m["tokens"] = .number(JSONNumber(result.tokens))
            return m
        }
    }
}
