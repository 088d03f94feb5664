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
///
/// Prompts that share a prefix share its computation: a new sequence copies the keys and values
/// of the longest prefix any slot holds (a running sequence, or what a finished one left behind).
/// Several samples of one prompt fork after a single prefill: the later ones wait one step for
/// the first, copy its prompt and draw their first token from the same final-position logits,
/// so a sample depends only on its prompt and seed, not on what else runs.
public final class Generator {
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    public let slots: Int
    /// A request waits a step for a prompt being prefilled when that saves at least this many tokens.
    public static let waitForPrefix = 64

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

    /// What a slot's cache holds: the tokens of positions 0..<tokens.count (valid after its
    /// sequence finished, until the slot is refilled), and the logits after the prompt.
    private struct Held {
        var tokens: [Int32] = []
        var promptLength = 0
        var promptLogits: [Float] = []
    }

    /// Results in request order. `onResult` is called as each finishes (in any order).
    public func generate(_ requests: [GenerationRequest], onResult: ((Int, GenerationResult) throws -> Void)? = nil) rethrows -> [GenerationResult] {
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        let context = model.config.maxPositionEmbeddings
        let capacity = max(1, min(context, requests.map { $0.prompt.count + $0.sampling.maxTokens }.max() ?? 1))
        let cache = KVCache(config: model.config, slots: min(slots, max(requests.count, 1)), capacity: capacity)
        var active = [Active?](repeating: nil, count: cache.slots)
        var held = [Held](repeating: Held(), count: cache.slots)
        var waiting: [Int] = []
        let V = model.config.vocabSize

        for (r, req) in requests.enumerated() {
            if req.sampling.maxTokens <= 0 || req.prompt.isEmpty {
                let result = GenerationResult(tokens: [], text: "", finishReason: .length)
                results[r] = result
                try onResult?(r, result)
            } else {
                waiting.append(r)
            }
        }

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

        /// Samples the next token of the sequence in `slot` from `logits` (overwritten).
        func advance(_ slot: Int, _ logits: UnsafeMutablePointer<Float>) throws {
            var a = active[slot]!
            let token = a.sampler.sample(logits, vocab: V)
            let p = a.sampler.parameters
            if p.stopTokens.contains(token) {
                active[slot] = a
                try finish(slot, .stop)
                return
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

        while !waiting.isEmpty || active.contains(where: { $0 != nil }) {
            // Fill free slots. Prompts started in this pass are not in the cache until the step
            // has run; a request that would share much of one waits for the next pass.
            var prefilling: [[Int32]] = []
            var startedThisPass = Set<Int>()
            for s in 0..<cache.slots where active[s] == nil {
                var chosen: (index: Int, source: Int?, shared: Int)?
                for (w, r) in waiting.enumerated() {
                    let prompt = Array(requests[r].prompt.suffix(capacity - 1))
                    var source: Int?, shared = 0
                    for t in 0..<cache.slots where !startedThisPass.contains(t) {
                        let n = commonPrefix(held[t].tokens, prompt)
                        if n > shared { (source, shared) = (t, n) }
                    }
                    if prefilling.contains(where: { commonPrefix($0, prompt) >= shared + Self.waitForPrefix }) { continue }
                    chosen = (w, source, shared)
                    break
                }
                guard let (w, source, shared) = chosen else { break }
                let r = waiting.remove(at: w)
                let prompt = Array(requests[r].prompt.suffix(capacity - 1))
                startedThisPass.insert(s)
                active[s] = Active(request: r, sampler: Sampler(requests[r].sampling), pending: [])
                if let t = source, shared == prompt.count, held[t].promptLength == prompt.count {
                    // The same prompt is in slot t: fork after its prefill.
                    cache.sharePrefix(from: t, to: s, count: shared)
                    if t != s { held[s] = held[t] }
                    held[s].tokens = prompt
                    var logits = held[s].promptLogits
                    try logits.withUnsafeMutableBufferPointer { try advance(s, $0.baseAddress!) }
                } else {
                    let reused = min(shared, prompt.count - 1)
                    if let t = source, reused > 0 { cache.sharePrefix(from: t, to: s, count: reused) }
                    held[s] = Held(tokens: Array(prompt[..<reused]))
                    active[s]!.pending = Array(prompt[reused...])
                    prefilling.append(prompt)
                }
            }
            let running = (0..<cache.slots).filter { active[$0] != nil }
            if running.isEmpty { continue }
            let segments = running.map { LlamaModel.Segment(slot: $0, tokens: active[$0]!.pending) }
            let hidden = model.forward(segments, cache: cache)
            var rows: [Int] = []
            var row = 0
            for s in segments { row += s.tokens.count; rows.append(row - 1) }
            let logits = model.logits(hidden, rows: rows)
            for (i, slot) in running.enumerated() {
                let row = logits.pointer + i * V
                held[slot].tokens += segments[i].tokens
                if active[slot]!.tokens.isEmpty {
                    held[slot].promptLength = held[slot].tokens.count
                    held[slot].promptLogits = Array(UnsafeBufferPointer(start: row, count: V))
                }
                try advance(slot, row)
            }
        }
        return results.map { $0! }
    }

    private func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        return i
    }

    private func earliestStop(_ text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.firstRange(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best
    }
}
