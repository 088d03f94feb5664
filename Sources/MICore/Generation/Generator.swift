import MIStream

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

    /// Results in request order. `onResult` is called as each finishes (in any order).
    public func generate(_ requests: [GenerationRequest], onResult: ((Int, GenerationResult) throws -> Void)? = nil) rethrows -> [GenerationResult] {
        try decode(requests, onResult: onResult, stop: { false })!
    }

    /// As `generate`, but checks for SIGINT/SIGTERM at every decoding step: then the sequences
    /// still running are dropped (none is returned half) and `.interrupted` is thrown, so a stage
    /// stops within a step, not at the end of its batch.
    public func generateUnlessInterrupted(_ requests: [GenerationRequest]) throws(StreamError) -> [GenerationResult] {
        guard let results = decode(requests, onResult: nil, stop: { Interrupts.requested }) else {
            throw .interrupted(signal: Interrupts.signal)
        }
        return results
    }

    /// The decoding loop; nil when `stop` said so before every request finished.
    private func decode(_ requests: [GenerationRequest], onResult: ((Int, GenerationResult) throws -> Void)?, stop: () -> Bool) rethrows
        -> [GenerationResult]?
    {
        let context = model.config.maxPositionEmbeddings
        let capacity = max(1, min(context, requests.map { $0.prompt.count + $0.sampling.maxTokens }.max() ?? 1))
        let cache = KVCache(config: model.config, slots: min(slots, max(requests.count, 1)), capacity: capacity)
        var d = Decoding(requests: requests, cache: cache, tokenizer: tokenizer, vocab: model.config.vocabSize)
        for (r, req) in requests.enumerated() {
            if req.sampling.maxTokens <= 0 || req.prompt.isEmpty {
                let result = GenerationResult(tokens: [], text: "", finishReason: .length)
                d.results[r] = result
                try onResult?(r, result)
            } else {
                d.waiting.append(r)
            }
        }
        while !d.waiting.isEmpty || d.active.contains(where: { $0 != nil }) {
            if stop() { return nil }
            for (r, result) in d.fillSlots() { try onResult?(r, result) }
            for (r, result) in d.step(model) { try onResult?(r, result) }
        }
        return d.results.map { $0! }
    }

    /// The state of one `generate` call: which request each cache slot decodes, what each slot's
    /// cache holds, and the requests still waiting for a slot.
    private struct Decoding {
        struct Active {
            let request: Int
            var sampler: Sampler
            var tokens: [Int32] = []
            var decoder = StreamingDecoder()
            var text = ""
            var pending: [Int32]
        }

        /// What a slot's cache holds: the tokens of positions 0..<tokens.count (valid after its
        /// sequence finished, until the slot is refilled), and the logits after the prompt.
        struct Held {
            var tokens: [Int32] = []
            var promptLength = 0
            var promptLogits: [Float] = []
        }

        let requests: [GenerationRequest]
        let cache: KVCache
        let tokenizer: BPETokenizer
        let vocab: Int
        var results: [GenerationResult?]
        var active: [Active?]
        var held: [Held]
        var waiting: [Int] = []

        init(requests: [GenerationRequest], cache: KVCache, tokenizer: BPETokenizer, vocab: Int) {
            self.requests = requests
            self.cache = cache
            self.tokenizer = tokenizer
            self.vocab = vocab
            results = [GenerationResult?](repeating: nil, count: requests.count)
            active = [Active?](repeating: nil, count: cache.slots)
            held = [Held](repeating: Held(), count: cache.slots)
        }

        /// The prompt as it fits the cache (its last capacity − 1 tokens).
        func prompt(_ r: Int) -> [Int32] { Array(requests[r].prompt.suffix(cache.capacity - 1)) }

        /// Fills free slots; returns the requests that finished on their first token. Prompts
        /// started in this pass are not in the cache until the step has run; a request that would
        /// share much of one waits for the next pass.
        mutating func fillSlots() -> [(Int, GenerationResult)] {
            var finished: [(Int, GenerationResult)] = []
            var prefilling: [[Int32]] = []
            var startedThisPass = Set<Int>()
            for s in 0..<cache.slots where active[s] == nil {
                var chosen: (index: Int, source: Int?, shared: Int)?
                for (w, r) in waiting.enumerated() {
                    let prompt = self.prompt(r)
                    var source: Int?, shared = 0
                    for t in 0..<cache.slots where !startedThisPass.contains(t) {
                        let n = Generator.commonPrefix(held[t].tokens, prompt)
                        if n > shared { (source, shared) = (t, n) }
                    }
                    if prefilling.contains(where: { Generator.commonPrefix($0, prompt) >= shared + Generator.waitForPrefix }) { continue }
                    chosen = (w, source, shared)
                    break
                }
                guard let (w, source, shared) = chosen else { break }
                let r = waiting.remove(at: w)
                let prompt = self.prompt(r)
                startedThisPass.insert(s)
                active[s] = Active(request: r, sampler: Sampler(requests[r].sampling), pending: [])
                if let t = source, shared == prompt.count, held[t].promptLength == prompt.count {
                    // The same prompt is in slot t: fork after its prefill.
                    cache.sharePrefix(from: t, to: s, count: shared)
                    if t != s { held[s] = held[t] }
                    held[s].tokens = prompt
                    var logits = held[s].promptLogits
                    if let f = logits.withUnsafeMutableBufferPointer({ advance(s, $0.baseAddress!) }) { finished.append(f) }
                } else {
                    let reused = min(shared, prompt.count - 1)
                    if let t = source, reused > 0 { cache.sharePrefix(from: t, to: s, count: reused) }
                    held[s] = Held(tokens: Array(prompt[..<reused]))
                    active[s]!.pending = Array(prompt[reused...])
                    prefilling.append(prompt)
                }
            }
            return finished
        }

        /// One forward step over every running sequence's pending tokens, then a token for each;
        /// returns the requests that finished.
        mutating func step(_ model: LlamaModel) -> [(Int, GenerationResult)] {
            let running = (0..<cache.slots).filter { active[$0] != nil }
            if running.isEmpty { return [] }
            let segments = running.map { LlamaModel.Segment(slot: $0, tokens: active[$0]!.pending) }
            let hidden = model.forward(segments, cache: cache)
            var rows: [Int] = []
            var row = 0
            for s in segments {
                row += s.tokens.count
                rows.append(row - 1)
            }
            let logits = model.logits(hidden, rows: rows)
            var finished: [(Int, GenerationResult)] = []
            for (i, slot) in running.enumerated() {
                let row = logits.pointer + i * vocab
                held[slot].tokens += segments[i].tokens
                if active[slot]!.tokens.isEmpty {
                    held[slot].promptLength = held[slot].tokens.count
                    held[slot].promptLogits = Array(UnsafeBufferPointer(start: row, count: vocab))
                }
                if let f = advance(slot, row) { finished.append(f) }
            }
            return finished
        }

        /// Samples the next token of the sequence in `slot` from `logits` (overwritten); returns
        /// its result when that ends it.
        mutating func advance(_ slot: Int, _ logits: UnsafeMutablePointer<Float>) -> (Int, GenerationResult)? {
            var a = active[slot]!
            let token = a.sampler.sample(logits, vocab: vocab)
            let p = a.sampler.parameters
            if p.stopTokens.contains(token) {
                active[slot] = a
                return finish(slot, .stop)
            }
            a.tokens.append(token)
            a.text += a.decoder.append(tokenizer.bytes(of: token))
            a.pending = [token]
            active[slot] = a
            if !p.stopStrings.isEmpty, Generator.earliestStop(a.text, p.stopStrings) != nil {
                return finish(slot, .stop)
            } else if a.tokens.count >= p.maxTokens || cache.lengths[slot] + 1 >= cache.capacity {
                return finish(slot, .length)
            }
            return nil
        }

        mutating func finish(_ slot: Int, _ reason: GenerationResult.FinishReason) -> (Int, GenerationResult) {
            var a = active[slot]!
            a.text += a.decoder.finish()
            // As the tokenizer's decoder does: a SentencePiece answer's first "▁" is no text.
            if tokenizer.stripsLeadingSpace, a.text.hasPrefix(" ") { a.text.removeFirst() }
            if let cut = Generator.earliestStop(a.text, a.sampler.parameters.stopStrings) { a.text = String(a.text[..<cut]) }
            let r = GenerationResult(tokens: a.tokens, text: a.text, finishReason: reason)
            results[a.request] = r
            active[slot] = nil
            cache.reset(slot: slot)
            return (a.request, r)
        }
    }

    fileprivate static func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        return i
    }

    fileprivate static func earliestStop(_ text: String, _ stops: [String]) -> String.Index? {
        var best: String.Index?
        for s in stops where !s.isEmpty {
            if let r = text.firstRange(of: s), best == nil || r.lowerBound < best! { best = r.lowerBound }
        }
        return best
    }
}
