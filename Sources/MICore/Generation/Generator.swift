/// One generation request: prompt token ids and how to sample.
public struct GenerationRequest: Sendable {
    public var prompt: [Int32]
    public var sampling: SamplingParameters
    public init(prompt: [Int32], sampling: SamplingParameters) {
        self.prompt = prompt
        self.sampling = sampling
    }
}

public struct GenerationResult: Sendable, Equatable {
    public enum FinishReason: String, Sendable { case stop, length }
    /// Generated token ids, without the stop token.
    public var tokens: [Int32]
    public var text: String
    public var finishReason: FinishReason
}

/// Decodes many sequences together: each step runs one token of every active sequence (and the
/// prompts of newly started ones) through the model as one packed batch, so the weights are read
/// once per step for all of them. A finished sequence's slot is refilled at once.
public final class Generator {
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let slots: Int

    public init(model: LlamaModel, tokenizer: BPETokenizer, slots: Int = 16) {
        self.model = model
        self.tokenizer = tokenizer
        self.slots = max(1, slots)
    }

    private struct Active {
        let request: Int
        var sampler: Sampler
        var tokens: [Int32] = []
        var decoder = StreamingDecoder()
        var text = ""
        var pending: [Int32]
    }

    /// Results in request order. `onResult` is called as each finishes (in any order).
    public func generate(_ requests: [GenerationRequest], onResult: ((Int, GenerationResult) throws -> Void)? = nil) rethrows -> [GenerationResult] {
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        let context = model.config.maxPositionEmbeddings
        let capacity = min(context, requests.map { $0.prompt.count + $0.sampling.maxTokens }.max() ?? 1)
        let cache = KVCache(config: model.config, slots: min(slots, max(requests.count, 1)), capacity: max(capacity, 1))
        var active = [Active?](repeating: nil, count: cache.slots)
        var next = 0
        let V = model.config.vocabSize

        func finish(_ slot: Int, _ reason: GenerationResult.FinishReason) throws {
            var a = active[slot]!
            a.text += a.decoder.finish()
            if let cut = earliestStop(a.text, a.sampler.parameters.stopStrings) { a.text = String(a.text[..<cut]) }
            let r = GenerationResult(tokens: a.tokens, text: a.text, finishReason: reason)
            results[a.request] = r
            active[slot] = nil
            cache.reset(slot: slot)
            try onResult?(a.request, r)
        }

        while true {
            // Fill free slots.
            for s in 0..<cache.slots where active[s] == nil && next < requests.count {
                let req = requests[next]
                if req.sampling.maxTokens <= 0 || req.prompt.isEmpty {
                    let r = GenerationResult(tokens: [], text: "", finishReason: .length)
                    results[next] = r
                    try onResult?(next, r)
                } else {
                    active[s] = Active(request: next, sampler: Sampler(req.sampling),
                                       pending: Array(req.prompt.suffix(capacity - 1)))
                }
                next += 1
            }
            let running = (0..<cache.slots).filter { active[$0] != nil }
            if running.isEmpty { break }
            let segments = running.map { LlamaModel.Segment(slot: $0, tokens: active[$0]!.pending) }
            let hidden = model.forward(segments, cache: cache)
            var rows: [Int] = []
            var row = 0
            for s in segments { row += s.tokens.count; rows.append(row - 1) }
            let logits = model.logits(hidden, rows: rows)
            for (i, slot) in running.enumerated() {
                var a = active[slot]!
                let token = a.sampler.sample(logits.pointer + i * V, vocab: V)
                let p = a.sampler.parameters
                if p.stopTokens.contains(token) {
                    active[slot] = a
                    try finish(slot, .stop)
                    continue
                }
                a.tokens.append(token)
                a.text += a.decoder.append(tokenizer.bytes(of: token))
                a.pending = [token]
                active[slot] = a
                if !p.stopStrings.isEmpty, earliestStop(a.text, p.stopStrings) != nil {
                    try finish(slot, .stop)
                } else if a.tokens.count >= p.maxTokens || cache.lengths[slot] + 1 >= cache.capacity {
                    try finish(slot, .length)
                }
            }
        }
        return results.map { $0! }
    }

    private func earliestStop(_ text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.firstRange(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best
    }
}
