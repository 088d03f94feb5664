import MIStream

/// Reads a Hugging Face tokenizer.json (byte-level BPE, or SentencePiece-style BPE with byte
/// fallback) and tokenizer_config.json.
enum TokenizerJSON {
    static func load(_ tok: JSONObject, config: JSONObject, path: String) throws(CheckpointError) -> (BPETokenizer, String?) {
        guard case let .object(model)? = tok["model"], (try? model.string("type")) == "BPE" else {
            throw .unsupported(path, "only BPE tokenizers are supported")
        }
        // SentencePiece-style: byte fallback, a ▁ normalizer or a Metaspace pre-tokenizer.
        let sentencePieceStyle: Bool = {
            if model["byte_fallback"] == .bool(true) || (tok["normalizer"] ?? .null) != .null { return true }
            guard case let .object(p)? = tok["pre_tokenizer"] else { return false }
            return JSONWriter.string(.object(p)).contains("\"Metaspace\"")
        }()
        let pre = sentencePieceStyle ? .gpt2 : try preTokenizer(tok["pre_tokenizer"], path: path)
        guard case let .object(vocabObject)? = model["vocab"] else { throw .malformed(path, "model.vocab is not an object") }
        var byId: [Int: String] = [:]
        for m in vocabObject.members {
            guard case let .number(n) = m.value, let id = n.int, id >= 0, id < 1 << 22 else {
                throw .malformed(path, "vocab[\(m.key)] is not a token id")
            }
            byId[id] = m.key
        }
        var literal: [Int] = []
        if case let .array(added)? = tok["added_tokens"] {
            for a in added {
                guard case let .object(o) = a, let id = try? o.int("id"), let content = try? o.string("content"), id >= 0, id < 1 << 22 else {
                    throw .malformed(path, "added_tokens entry without id and content")
                }
                byId[id] = content
                literal.append(id)
            }
        }
        let count = (byId.keys.max() ?? -1) + 1
        var vocabulary = [String](repeating: "", count: count)
        for (id, t) in byId { vocabulary[id] = t }
        var merges: [String] = []
        if case let .array(ms)? = model["merges"] {
            for m in ms {
                switch m {
                case let .string(s): merges.append(s)
                case let .array(pair) where pair.count == 2:
                    guard case let .string(a) = pair[0], case let .string(b) = pair[1] else {
                        throw .malformed(path, "merge is not a pair of strings")
                    }
                    merges.append(a + " " + b)
                default: throw .malformed(path, "merge is neither \"a b\" nor [a, b]")
                }
            }
        }
        func tokenId(_ key: String) -> Int32? {
            let text: String?
            switch config[key] {
            case let .string(s)?: text = s
            case let .object(o)?: text = try? o.string("content")
            default: text = nil
            }
            guard let text, let id = byId.first(where: { $0.value == text })?.key else { return nil }
            return Int32(id)
        }
        let eos = tokenId("eos_token")
        var spelling: SentencePieceSpelling?
        if sentencePieceStyle {
            let unknownText = try? model.string("unk_token")
            let unknown = unknownText.flatMap { u in byId.first(where: { $0.value == u }).map { Int32($0.key) } }
            spelling = try sentencePieceSpelling(tok, model: model, unknown: unknown, path: path)
        }
        let tokenizer: BPETokenizer
        do {
            tokenizer = try BPETokenizer(
                vocabulary: vocabulary, merges: merges, specialIds: literal, preTokenizer: pre,
                bos: tokenId("bos_token"), eos: eos, pad: tokenId("pad_token") ?? eos,
                addBOS: config["add_bos_token"] == .bool(true), sentencePiece: spelling,
                ignoreMerges: model["ignore_merges"] == .bool(true), repeatedMerges: .last)
        } catch {
            throw .malformed(path, error.description)
        }
        var template: String?
        switch config["chat_template"] {
        case let .string(s)?: template = s
        case let .array(list)?:
            for case let .object(o) in list where (try? o.string("name")) == "default" { template = try? o.string("template") }
        default: break
        }
        return (tokenizer, template)
    }

    /// A tokenizer.json that Hugging Face `tokenizers` reads back to the same ids.
    static func export(_ t: BPETokenizer) -> JSONObject {
        func bool(_ b: Bool) -> JSONValue { .bool(b) }
        var byteLevel = JSONObject()
        byteLevel["type"] = .string("ByteLevel")
        byteLevel["add_prefix_space"] = bool(false)
        byteLevel["trim_offsets"] = bool(true)
        byteLevel["use_regex"] = bool(true)
        var pre: JSONObject
        switch t.preTokenizer {
        case .gpt2:
            pre = byteLevel
        case .smollm:
            var digits = JSONObject()
            digits["type"] = .string("Digits")
            digits["individual_digits"] = bool(true)
            pre = JSONObject()
            pre["type"] = .string("Sequence")
            pre["pretokenizers"] = .array([.object(digits), .object(byteLevel)])
        case .llama3, .qwen2:
            var split = JSONObject()
            split["type"] = .string("Split")
            var pattern = JSONObject()
            pattern["Regex"] = .string(t.preTokenizer == .llama3 ? llama3Pattern : qwen2Pattern)
            split["pattern"] = .object(pattern)
            split["behavior"] = .string("Isolated")
            split["invert"] = bool(false)
            var bl = byteLevel
            bl["use_regex"] = bool(false)
            pre = JSONObject()
            pre["type"] = .string("Sequence")
            pre["pretokenizers"] = .array([.object(split), .object(bl)])
        }
        var added: [JSONValue] = []
        for id in t.specialTokens.keys.sorted() {
            var a = JSONObject()
            a["id"] = .number(JSONNumber(Int(id)))
            a["content"] = .string(t.specialTokens[id]!)
            a["single_word"] = bool(false)
            a["lstrip"] = bool(false)
            a["rstrip"] = bool(false)
            a["normalized"] = bool(false)
            a["special"] = bool(true)
            added.append(.object(a))
        }
        var seen = Set<String>()
        var vocab: [(String, JSONValue)] = []
        for (i, token) in t.vocabulary.enumerated() where seen.insert(token).inserted {
            vocab.append((token, .number(JSONNumber(i))))
        }
        var model = JSONObject()
        model["type"] = .string("BPE")
        model["dropout"] = .null
        model["unk_token"] = t.sentencePiece?.unknown.map { .string(t.vocabulary[Int($0)]) } ?? .null
        model["continuing_subword_prefix"] = .null
        model["end_of_word_suffix"] = .null
        model["fuse_unk"] = bool(t.sentencePiece != nil)
        model["byte_fallback"] = bool(t.sentencePiece?.byteFallback ?? false)
        model["ignore_merges"] = bool(t.ignoreMerges)
        model["vocab"] = .object(JSONObject(uniqueKeysAndValues: vocab))
        model["merges"] = .array(t.mergeLines.map { .string($0) })
        var decoder = byteLevel
        decoder["add_prefix_space"] = bool(true)
        var o = JSONObject()
        o["version"] = .string("1.0")
        o["truncation"] = .null
        o["padding"] = .null
        o["added_tokens"] = .array(added)
        if let s = t.sentencePiece {
            let parts = sentencePieceParts(s)
            o["normalizer"] = parts.normalizer
            o["pre_tokenizer"] = parts.preTokenizer
            o["post_processor"] = .null
            o["decoder"] = parts.decoder
        } else {
            o["normalizer"] = .null
            o["pre_tokenizer"] = .object(pre)
            o["post_processor"] = .null
            o["decoder"] = .object(decoder)
        }
        o["model"] = .object(model)
        return o
    }

    /// Recognises the pre-tokenizer pipelines of the supported model families.
    static func preTokenizer(_ value: JSONValue?, path: String) throws(CheckpointError) -> PreTokenizer {
        guard case let .object(o)? = value, let type = try? o.string("type") else { throw .unsupported(path, "missing pre_tokenizer") }
        if type == "ByteLevel" {
            guard o["use_regex"] != .bool(false) else { throw .unsupported(path, "ByteLevel without its regex") }
            if o["add_prefix_space"] == .bool(true) { throw .unsupported(path, "ByteLevel with add_prefix_space") }
            return .gpt2
        }
        guard type == "Sequence", case let .array(steps)? = o["pretokenizers"], steps.count == 2,
            case let .object(first) = steps[0], case let .object(second) = steps[1],
            (try? second.string("type")) == "ByteLevel"
        else {
            throw .unsupported(path, "pre_tokenizer \(JSONWriter.string(value!).prefix(120))")
        }
        switch try? first.string("type") {
        case "Digits" where first["individual_digits"] == .bool(true):
            return .smollm
        case "Split":
            guard case let .object(pattern)? = first["pattern"], let regex = try? pattern.string("Regex") else {
                throw .unsupported(path, "Split pre-tokenizer without a regex")
            }
            if regex == llama3Pattern { return .llama3 }
            if regex == qwen2Pattern { return .qwen2 }
            throw .unsupported(path, "Split regex \(regex)")
        default:
            throw .unsupported(path, "pre_tokenizer \(JSONWriter.string(value!).prefix(120))")
        }
    }

    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
}
