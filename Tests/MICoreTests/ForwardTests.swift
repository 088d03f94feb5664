import MICore
import Testing

/// Log-probabilities within 2e-3 of transformers in float64 (f32 accumulation over 30 layers
/// and a Q4_1-dequantised model leaves ~1e-4; 2e-3 is the project's contract).
let logprobTolerance = 2e-3

@Suite(.tags(.model), .enabled(if: TestModel.available, "set MI_MODEL to the default GGUF (make test does)"))
struct ForwardTests {
    @Test func completionLogProbsMatchTransformers() throws {
        let loaded = try #require(TestModel.loaded)
        let cases = try #require(try Fixture.json("logprobs.json")["cases"] as? [[String: Any]])
        var pairs: [(prompt: [Int32], completion: [Int32])] = []
        var expected: [[Double]] = []
        for c in cases {
            let prompt = try #require(c["prompt"] as? String), completion = try #require(c["completion"] as? String)
            let p = loaded.tokenizer.encode(prompt), q = loaded.tokenizer.encode(completion)
            #expect(p == (c["prompt_ids"] as? [Int])?.map(Int32.init))
            #expect(q == (c["completion_ids"] as? [Int])?.map(Int32.init))
            pairs.append((p, q))
            expected.append(try #require(c["logprobs"] as? [Double]))
        }
        // All cases in one packed batch, and each on its own: same answers.
        let batched = loaded.model.completionLogProbs(pairs)
        for (i, pair) in pairs.enumerated() {
            let single = loaded.model.completionLogProbs([pair])[0]
            for (j, lp) in batched[i].enumerated() {
                #expect(abs(lp - expected[i][j]) < logprobTolerance, "case \(i) token \(j): \(lp) vs \(expected[i][j])")
                #expect(abs(lp - single[j]) < 1e-4)
            }
        }
    }

    @Test func greedyContinuationsMatchTransformers() throws {
        let loaded = try #require(TestModel.loaded)
        let (requests, expected) = try Fixture.greedy()
        // Decoded together (batch) and one at a time.
        let together = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 4).generate(requests)
        let alone = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 1).generate(requests)
        for i in 0..<requests.count {
            #expect(together[i].tokens == expected[i], "prompt \(i)")
            #expect(alone[i].tokens == expected[i], "prompt \(i)")
        }
    }

    @Test func sameSeedSameSample() throws {
        let loaded = try #require(TestModel.loaded)
        var p = SamplingParameters()
        p.temperature = 1
        p.topP = 0.9
        p.presencePenalty = 1
        p.maxTokens = 16
        p.seed = 7
        let prompt = loaded.tokenizer.encode(loaded.chat!.prompt(user: "Write a short poem."))
        let g = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 4)
        let a = g.generate([GenerationRequest(prompt: prompt, sampling: p)])
        var other = p
        other.seed = 8
        let b = g.generate([GenerationRequest(prompt: prompt, sampling: other), GenerationRequest(prompt: prompt, sampling: p)])
        #expect(a[0].tokens.count == 16)
        #expect(b[1].tokens == a[0].tokens)
        #expect(b[0].tokens != a[0].tokens)
    }
}

/// The generator reuses the key/value rows of a prompt prefix another slot holds (samples of one
/// prompt fork after one prefill; prompts with a common start share it). Reuse must not change a
/// token: every request decoded among the others equals the same request decoded by a fresh
/// generator on its own.
@Suite(.tags(.model), .enabled(if: TestModel.available, "set MI_MODEL to the default GGUF (make test does)"))
struct PrefixSharingTests {
    @Test func sharedPrefixesGiveTheTokensOfARequestAlone() throws {
        let loaded = try #require(TestModel.loaded)
        let chat = try #require(loaded.chat)
        let system = String(repeating: "You write careful, short answers for a student. ", count: 6)
        func prompt(_ user: String) -> [Int32] { loaded.tokenizer.encode(chat.prompt(user: user, system: system)) }
        var sampled = SamplingParameters()
        sampled.temperature = 1
        sampled.topP = 0.9
        sampled.maxTokens = 12
        var greedy = sampled
        greedy.temperature = 0
        var requests: [GenerationRequest] = []
        for seed in 1...3 { // three samples of one prompt: one prefill, two forks
            var p = sampled
            p.seed = UInt64(seed)
            requests.append(GenerationRequest(prompt: prompt("Write a short poem."), sampling: p))
        }
        requests.append(GenerationRequest(prompt: prompt("Name three rivers in Europe."), sampling: greedy))
        requests.append(GenerationRequest(prompt: prompt("Name three rivers in Asia."), sampling: greedy))
        requests.append(GenerationRequest(prompt: prompt("Write a short poem."), sampling: greedy))
        // The two river prompts share the system prompt and the user turn's start: long enough to be reused.
        #expect(zip(requests[3].prompt, requests[4].prompt).prefix(while: { $0 == $1 }).count >= Generator.waitForPrefix)

        for slots in [1, 2, 4] {
            let together = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: slots).generate(requests)
            for (i, r) in requests.enumerated() {
                let alone = Generator(model: loaded.model, tokenizer: loaded.tokenizer, slots: 1).generate([r])[0]
                #expect(together[i].tokens == alone.tokens, "slots \(slots), request \(i)")
                #expect(together[i].tokens.count == 12 || together[i].finishReason == .stop)
            }
        }
    }
}
