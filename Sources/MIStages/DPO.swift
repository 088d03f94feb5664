import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Direct preference optimisation of a model on (prompt, chosen, rejected) pairs, with the sigmoid
/// DPO loss  −log σ(β·[(log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r))])  (Rafailov et al.;
/// TRL's default), averaged over the pairs of a batch. The reference log-probabilities are those
/// of the starting model, computed once per pair before training, so no second copy is held.
/// With `nllWeight` α > 0 the loss also has α times the chosen completions' NLL per token (over
/// all chosen tokens of the batch, or of each micro-batch with gradient accumulation): RPO (Pang et al. 2024; TRL's `rpo_alpha`), which keeps the
/// chosen completions likely while DPO widens the margin.
public final class DPORun {
    public let loaded: LoadedModel
    public let settings: TrainingSettings
    public let beta: Double
    public let out: String
    public var metricsPath: String?
    public var nllWeight = 0.0

    public struct Pair {
        public var prompt: [Int32]
        public var chosen: [Int32]
        public var rejected: [Int32]
        public var referenceChosen = 0.0
        public var referenceRejected = 0.0
        /// The pair's prompt_id (else its prompt): held-out pairs are chosen by prompt.
        public var group = ""
        /// The pair record's id, if it has one.
        public var id: String?
    }

    public struct Pairs {
        public var items: [Pair]
        public var truncated: Int
        public var fingerprint: String
        /// Pairs kept out of training to measure how the trained model ranks unseen pairs.
        public var heldout: [Pair] = []

        /// Moves the pairs of about `fraction` of the prompts (by a hash of the prompt_id, so the
        /// split does not depend on order) into `heldout`.
        public mutating func holdOut(fraction: Double) {
            guard fraction > 0 else { return }
            let isHeld = { (p: Pair) in Fingerprint.selects(p.group, fraction: fraction) }
            heldout = items.filter(isHeld)
            items = items.filter { !isHeld($0) }
            var fp = Fingerprint()
            fp.add(fingerprint)
            fp.add("heldout \(fraction)")
            fingerprint = fp.hex
        }
    }

    public init(model: LoadedModel, settings: TrainingSettings, beta: Double, out: String) {
        loaded = model
        self.settings = settings
        self.beta = beta
        self.out = out
    }

    /// Reads pair records; the prompt is a user message, chosen and rejected are responses.
    public static func readPairs(_ reader: RecordReader, model: LoadedModel, maxLength: Int) throws -> Pairs {
        let chat = try model.requireChat()
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
            let p = chat.promptIds(user: user, tokenizer: model.tokenizer)
            var c = chat.completionIds(chosen, tokenizer: model.tokenizer), x = chat.completionIds(rejected, tokenizer: model.tokenizer)
            if p.count + max(c.count, x.count) > maxLength {
                truncated += 1
                c = Array(c.prefix(max(0, maxLength - p.count)))
                x = Array(x.prefix(max(0, maxLength - p.count)))
            }
            if c.isEmpty || x.isEmpty {
                try reader.reject(r, "prompt longer than --max-length")
                continue
            }
            fp.add(user)
            fp.add(chosen)
            fp.add(rejected)
            var pair = Pair(prompt: p, chosen: c, rejected: x)
            pair.group = (try? r.object.string("prompt_id")) ?? user
            pair.id = try? r.object.string("id")
            items.append(pair)
        }
        return Pairs(items: items, truncated: truncated, fingerprint: fp.hex)
    }

    /// Log-probabilities of chosen and rejected under the starting model (training and held-out pairs).
    public func computeReference(_ pairs: inout Pairs, batch: Int = 8) {
        Self.score(loaded.model, &pairs.items, batch: batch)
        Self.score(loaded.model, &pairs.heldout, batch: batch)
    }

    /// Sets each pair's reference log-probabilities to `model`'s.
    public static func score(_ model: LlamaModel, _ items: inout [Pair], batch: Int = 8) {
        for b0 in stride(from: 0, to: items.count, by: batch) {
            let part = items[b0..<min(b0 + batch, items.count)]
            let seqs = part.flatMap { [($0.prompt, $0.chosen), ($0.prompt, $0.rejected)] }
            let lps = model.completionLogProbs(seqs)
            for (i, _) in part.enumerated() {
                items[b0 + i].referenceChosen = lps[2 * i].reduce(0, +)
                items[b0 + i].referenceRejected = lps[2 * i + 1].reduce(0, +)
            }
        }
    }

    /// How the trained model ranks held-out pairs against the starting model: preference
    /// accuracy (implicit reward of chosen above rejected) with a bootstrap interval, mean reward
    /// margin, and the mean shift of the log-probability of chosen and rejected (in total and
    /// per token), which is how far the model moved on text it was not trained on.
    public func heldoutMetrics(_ heldout: [Pair], batch: Int = 8) -> JSONObject {
        Self.rank(heldout, by: loaded.model, beta: beta, batch: batch).metrics
    }

    /// How `model` ranks `pairs` against the log-probabilities in their reference fields (see
    /// `heldoutMetrics`), and each pair's chosen and rejected log-probability shift.
    public static func rank(_ pairs: [Pair], by model: LlamaModel, beta: Double, batch: Int = 8) -> (
        metrics: JSONObject, shifts: [(chosen: Double, rejected: Double)]
    ) {
        var now = pairs
        score(model, &now, batch: batch)
        var correct: [Double] = [], margins: [Double] = []
        var shiftC = 0.0, shiftR = 0.0, tokensC = 0, tokensR = 0, loss = 0.0
        for (before, after) in zip(pairs, now) {
            let dc = after.referenceChosen - before.referenceChosen, dr = after.referenceRejected - before.referenceRejected
            let z = beta * (dc - dr)
            margins.append(z)
            loss += z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z))
            correct.append(dc > dr ? 1 : 0)
            shiftC += dc
            shiftR += dr
            tokensC += before.chosen.count
            tokensR += before.rejected.count
        }
        let n = Double(max(pairs.count, 1))
        let acc = Evaluation.bootstrap(correct)
        func num(_ x: Double) -> JSONValue { JSONNumber(x).map(JSONValue.number) ?? .null }
        var m = JSONObject()
        m["stage"] = .string("dpo-heldout")
        m["pairs"] = .number(JSONNumber(pairs.count))
        m["loss"] = num(loss / n)
        m["accuracy"] = num(acc.mean)
        m["accuracy_ci"] = .array([num(acc.low), num(acc.high)])
        m["reward_margin"] = num(margins.reduce(0, +) / n)
        m["chosen_logp_shift"] = num(shiftC / n)
        m["rejected_logp_shift"] = num(shiftR / n)
        m["chosen_logp_shift_per_token"] = num(shiftC / Double(max(tokensC, 1)))
        m["rejected_logp_shift_per_token"] = num(shiftR / Double(max(tokensR, 1)))
        let shifts = zip(pairs, now).map {
            (chosen: $1.referenceChosen - $0.referenceChosen, rejected: $1.referenceRejected - $0.referenceRejected)
        }
        return (m, shifts)
    }

    public func run(_ pairs: Pairs, resume: Bool) throws {
        let loop = TrainingLoop(
            model: loaded, settings: settings, out: out, stage: "dpo",
            dataFingerprint: pairs.fingerprint, itemCount: pairs.items.count)
        loop.metricsPath = metricsPath
        loop.stateExtras["beta"] = JSONNumber(beta).map(JSONValue.number) ?? .null
        if !pairs.heldout.isEmpty {
            loop.finalMetrics = { [unowned self] in self.heldoutMetrics(pairs.heldout) }
        }
        if nllWeight > 0 { loop.stateExtras["nll_weight"] = JSONNumber(nllWeight).map(JSONValue.number) ?? .null }
        let beta = self.beta, nllWeight = self.nllWeight
        try loop.run(resume: resume) { items, bp, scale in
            let batch = items.map { pairs.items[$0] }
            let examples = batch.flatMap {
                [TrainingExample(prompt: $0.prompt, completion: $0.chosen), TrainingExample(prompt: $0.prompt, completion: $0.rejected)]
            }
            var objective = Objective()
            let result = bp.accumulate(examples, scale: scale) { nll, tokens in
                objective = Self.objective(
                    nll: nll, tokens: tokens, reference: batch.map { ($0.referenceChosen, $0.referenceRejected) }, beta: beta,
                    nllWeight: nllWeight)
                return objective.weights
            }
            let num = JSONNumber.value
            var m = JSONObject()
            m["loss"] = num(objective.loss)
            m["chosen_reward"] = num(objective.chosenReward)
            m["rejected_reward"] = num(objective.rejectedReward)
            m["reward_margin"] = num(objective.chosenReward - objective.rejectedReward)
            m["accuracy"] = num(objective.accuracy)
            if nllWeight > 0 { m["chosen_nll"] = num(objective.chosenNLL) }
            m["tokens"] = .number(JSONNumber(result.tokens))
            return m
        }
    }

    /// One batch's loss, its parts, and the weights that make its gradient (see `objective`).
    public struct Objective {
        /// The loss: the mean DPO loss over the pairs, plus nllWeight × `chosenNLL`.
        public var loss = 0.0
        /// Mean implicit rewards β·(log π − log π_ref) of chosen and rejected, and the share of
        /// pairs whose chosen reward is higher.
        public var chosenReward = 0.0, rejectedReward = 0.0, accuracy = 0.0
        /// The chosen completions' NLL per token, over all chosen tokens of the batch.
        public var chosenNLL = 0.0
        /// ∂loss/∂(summed NLL) of each completion: chosen, rejected, chosen, rejected, …
        public var weights: [Double] = []
    }

    /// The loss of a batch of pairs from each completion's summed NLL and token count (chosen,
    /// rejected, chosen, …) and each pair's reference log-probabilities, with the weight of each
    /// completion's summed NLL in its gradient:
    ///   ∂/∂NLL(chosen) = β(1 − σ(z))/B + α/N_chosen,  ∂/∂NLL(rejected) = −β(1 − σ(z))/B,
    /// where B is the number of pairs and N_chosen the chosen tokens of the batch.
    public static func objective(
        nll: [Double], tokens: [Int], reference: [(chosen: Double, rejected: Double)], beta: Double, nllWeight: Double
    ) -> Objective {
        var o = Objective()
        let n = Double(reference.count)
        let chosenTokens = Double(max(stride(from: 0, to: tokens.count, by: 2).map { tokens[$0] }.reduce(0, +), 1))
        for (i, ref) in reference.enumerated() {
            let chosenReward = beta * (-nll[2 * i] - ref.chosen)
            let rejectedReward = beta * (-nll[2 * i + 1] - ref.rejected)
            let z = chosenReward - rejectedReward
            let sigma = 1 / (1 + exp(-z))
            o.loss += (z >= 0 ? log1p(exp(-z)) : -z + log1p(exp(z))) / n
            o.chosenReward += chosenReward / n
            o.rejectedReward += rejectedReward / n
            o.accuracy += (chosenReward > rejectedReward ? 1 : 0) / n
            o.chosenNLL += nll[2 * i] / chosenTokens
            o.weights.append(beta * (1 - sigma) / n + nllWeight / chosenTokens)
            o.weights.append(-beta * (1 - sigma) / n)
        }
        o.loss += nllWeight * o.chosenNLL
        return o
    }
}
