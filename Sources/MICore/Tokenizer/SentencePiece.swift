import MIStream

/// How a SentencePiece-style BPE vocabulary (Llama 2, TinyLlama, Mistral) spells text: spaces are
/// written as `▁`, a `▁` goes before the text (the "dummy prefix"), the symbols BPE starts from
/// are characters, and a character without a piece becomes its UTF-8 bytes as `<0xXX>` tokens.
public struct SentencePieceSpelling: Sendable, Equatable {
    /// When the dummy prefix `▁` goes before a stretch of text between special tokens.
    public enum Prefix: String, Sendable {
        /// Before every stretch (tokenizer.json normalizer `Prepend`, llama.cpp's
        /// `add_space_prefix`, Metaspace "always" behind a `\A▁ → ▁▁` replace).
        case always
        /// Before every stretch that does not already start with `▁` (Metaspace "always").
        case unlessPresent
        /// Only before a stretch at the very start of the text (Metaspace "first").
        case first
        /// Never (Metaspace "never", or no prefix at all).
        case never
    }

    public var prefix: Prefix
    /// Each `▁` starts a new piece that BPE merges on its own (Metaspace `split: true`).
    public var splitWords: Bool
    /// A character without a piece becomes its bytes' `<0xXX>` tokens (else the unknown token).
    public var byteFallback: Bool
    /// The unknown token, for characters without a piece (and without byte tokens).
    public var unknown: Int32?

    public init(prefix: Prefix, splitWords: Bool = false, byteFallback: Bool = true, unknown: Int32?) {
        self.prefix = prefix
        self.splitWords = splitWords
        self.byteFallback = byteFallback
        self.unknown = unknown
    }

    static let space: Unicode.Scalar = "\u{2581}"

    /// The text of a byte token, `<0x0A>` for 10.
    static func byteToken(_ b: UInt8) -> String {
        let hex = String(b, radix: 16, uppercase: true)
        return "<0x" + (hex.count == 1 ? "0" + hex : hex) + ">"
    }

    /// The byte a `<0xXX>` token stands for.
    static func byteOfToken(_ t: String) -> UInt8? {
        guard t.utf8.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">") else { return nil }
        return UInt8(t.dropFirst(3).prefix(2), radix: 16)
    }

    /// Whether a stretch of text that starts at `start` gets the dummy prefix. A continuation (the
    /// completion after a prompt) is not a start, so its first stretch gets none.
    func prefixes(_ scalars: [Unicode.Scalar], atStart start: Bool, continuing: Bool) -> Bool {
        let first = start && !continuing
        switch prefix {
        case .always: return !(start && continuing)
        case .unlessPresent: return !(start && continuing) && scalars.first != Self.space
        case .first: return first && scalars.first != Self.space
        case .never: return false
        }
    }

    /// BPE merges for a vocabulary that has scores instead (GGUF `tokenizer.ggml.model = llama`):
    /// every split of a normal piece into two normal pieces, ranked by the whole piece's score,
    /// highest first (then by id), as SentencePiece merges and transformers' converter ranks them.
    static func merges(vocabulary: [String], scores: [Float], normal: [Bool]) -> [String] {
        var index: [String: Int] = [:]
        for (i, t) in vocabulary.enumerated() where normal[i] && index[t] == nil { index[t] = i }
        var ranked: [(score: Float, id: Int, left: String, right: String)] = []
        for (id, token) in vocabulary.enumerated() where normal[id] && index[token] == id {
            let chars = Array(token)
            guard chars.count > 1 else { continue }
            for cut in 1..<chars.count {
                let left = String(chars[..<cut]), right = String(chars[cut...])
                if index[left] != nil, index[right] != nil { ranked.append((scores[id], id, left, right)) }
            }
        }
        ranked.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.id != b.id { return a.id < b.id }
            return (a.left, a.right) < (b.left, b.right)
        }
        return ranked.map { $0.left + " " + $0.right }
    }
}

extension TokenizerJSON {
    /// The spelling of a SentencePiece-style tokenizer.json, from its normalizer and pre-tokenizer:
    /// TinyLlama's and Llama 2's `Prepend("▁")` + `Replace(" ", "▁")`, or transformers' newer
    /// `Metaspace` (with an optional `Replace(" ", "▁")` and `\A▁ → ▁▁` before it).
    static func sentencePieceSpelling(
        _ tok: JSONObject, model: JSONObject, unknown: Int32?, path: String
    ) throws(CheckpointError) -> SentencePieceSpelling {
        var prepend = false, doubled = false
        var normalizers: [JSONObject] = []
        switch tok["normalizer"] {
        case nil, .null?: break
        case let .object(o)? where (try? o.string("type")) == "Sequence":
            guard case let .array(list)? = o["normalizers"] else { throw .malformed(path, "normalizer Sequence without normalizers") }
            for case let .object(n) in list { normalizers.append(n) }
        case let .object(o)?: normalizers = [o]
        default: throw .malformed(path, "normalizer is not an object")
        }
        for n in normalizers {
            let type = (try? n.string("type")) ?? "?"
            if type == "Prepend", (try? n.string("prepend")) == "\u{2581}" {
                prepend = true
                continue
            }
            if type == "Replace", case let .object(pattern)? = n["pattern"] {
                let content = try? n.string("content")
                if (try? pattern.string("String")) == " ", content == "\u{2581}" { continue }
                if (try? pattern.string("Regex")) == "\\A\u{2581}", content == "\u{2581}\u{2581}" {
                    doubled = true
                    continue
                }
            }
            throw .unsupported(path, "normalizer \(JSONWriter.string(.object(n)).prefix(120))")
        }
        var metaspace: JSONObject?
        switch tok["pre_tokenizer"] {
        case nil, .null?: break
        case let .object(o)? where (try? o.string("type")) == "Metaspace": metaspace = o
        case let .object(o)? where (try? o.string("type")) == "Sequence":
            guard case let .array(list)? = o["pretokenizers"], list.count == 1, case let .object(m) = list[0],
                (try? m.string("type")) == "Metaspace"
            else { throw .unsupported(path, "pre_tokenizer \(JSONWriter.string(.object(o)).prefix(120))") }
            metaspace = m
        case let v?: throw .unsupported(path, "pre_tokenizer \(JSONWriter.string(v).prefix(120)) with a SentencePiece vocabulary")
        }
        let prefix: SentencePieceSpelling.Prefix
        var split = false
        if let m = metaspace {
            guard prepend == false, (try? m.string("replacement")) == "\u{2581}" else {
                throw .unsupported(path, "Metaspace \(JSONWriter.string(.object(m)).prefix(120))")
            }
            split = m["split"] == .bool(true)
            // Older files say add_prefix_space instead of prepend_scheme.
            let scheme = (try? m.string("prepend_scheme")) ?? (m["add_prefix_space"] == .bool(false) ? "never" : "always")
            switch (scheme, doubled) {
            case ("always", true): prefix = .always
            case ("always", false): prefix = .unlessPresent
            case ("first", false): prefix = .first
            case ("never", false): prefix = .never
            default: throw .unsupported(path, "Metaspace prepend_scheme \(scheme)\(doubled ? " after \\A▁ → ▁▁" : "")")
            }
        } else {
            guard !doubled else { throw .unsupported(path, "normalizer \\A▁ → ▁▁ without a Metaspace pre-tokenizer") }
            prefix = prepend ? .always : .never
        }
        return SentencePieceSpelling(
            prefix: prefix, splitWords: split, byteFallback: model["byte_fallback"] == .bool(true), unknown: unknown)
    }

    /// The normalizer, pre-tokenizer and decoder that spell `s` in a tokenizer.json.
    static func sentencePieceParts(_ s: SentencePieceSpelling) -> (normalizer: JSONValue, preTokenizer: JSONValue, decoder: JSONValue) {
        func object(_ pairs: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(uniqueKeysAndValues: pairs)) }
        func replace(_ a: String, _ b: String) -> JSONValue {
            object([("type", .string("Replace")), ("pattern", object([("String", .string(a))])), ("content", .string(b))])
        }
        let space = "\u{2581}"
        var normalizer: JSONValue = .null, pre: JSONValue = .null
        switch s.prefix {
        case .always where !s.splitWords:
            normalizer = object([
                ("type", .string("Sequence")),
                ("normalizers", .array([object([("type", .string("Prepend")), ("prepend", .string(space))]), replace(" ", space)])),
            ])
        default:
            let scheme: String
            switch s.prefix {
            case .always, .unlessPresent: scheme = "always"
            case .first: scheme = "first"
            case .never: scheme = "never"
            }
            if s.prefix == .always {
                let doubling = object([
                    ("type", .string("Replace")), ("pattern", object([("Regex", .string("\\A" + space))])), ("content", .string(space + space)),
                ])
                normalizer = object([("type", .string("Sequence")), ("normalizers", .array([replace(" ", space), doubling]))])
            }
            pre = object([
                ("type", .string("Metaspace")), ("replacement", .string(space)), ("prepend_scheme", .string(scheme)),
                ("split", .bool(s.splitWords)),
            ])
        }
        var steps: [JSONValue] = [replace(space, " "), object([("type", .string("ByteFallback"))]), object([("type", .string("Fuse"))])]
        if s.prefix != .never {
            steps.append(
                object([("type", .string("Strip")), ("content", .string(" ")), ("start", .number(JSONNumber(1))), ("stop", .number(JSONNumber(0)))]))
        }
        return (normalizer, pre, object([("type", .string("Sequence")), ("decoders", .array(steps))]))
    }
}
