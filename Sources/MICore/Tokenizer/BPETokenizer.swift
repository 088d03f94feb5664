/// Byte-level BPE (GPT-2 family): special tokens written literally in the text map to their ids,
/// the rest is pre-tokenized, spelled in GPT-2's byte alphabet and merged by rank.
public final class BPETokenizer: @unchecked Sendable {
    public typealias Token = Int32

    public let vocabulary: [String]
    public let preTokenizer: PreTokenizer
    public let bos: Token?
    public let eos: Token?
    public let pad: Token?
    /// Whether a BOS token is put before encoded text (GGUF `tokenizer.ggml.add_bos_token`).
    public let addBOS: Bool
    /// Ids of control and user-defined tokens, matched literally in text.
    public let specialTokens: [Token: String]
    /// The merges in rank order ("left right"), as the vocabulary files store them.
    public let mergeLines: [String]

    let bytesOfToken: [[UInt8]]
    let idOfByte: [Token]
    /// (left << 32 | right) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, merged: Token)]
    /// Special token texts by their first UTF-8 byte, longest first.
    let specialsByFirstByte: [UInt8: [([UInt8], Token)]]

    public var count: Int { vocabulary.count }

    public enum LoadError: Error, CustomStringConvertible {
        case unsupported(String)
        case malformed(String)
        public var description: String {
            switch self {
            case let .unsupported(m): return "unsupported tokenizer: \(m)"
            case let .malformed(m): return "malformed tokenizer: \(m)"
            }
        }
    }

    /// GGUF token types (llama.cpp): 3 = control, 4 = user-defined; both are matched literally.
    static let literalTypes: Set<Int> = [3, 4]

    public convenience init(gguf: GGUFFile) throws(LoadError) {
        guard let model = gguf.string("tokenizer.ggml.model") else { throw .malformed("no tokenizer.ggml.model") }
        guard model == "gpt2" else { throw .unsupported("tokenizer model '\(model)' (only byte-level BPE, 'gpt2', is supported)") }
        let preName = gguf.string("tokenizer.ggml.pre") ?? "default"
        guard let pre = PreTokenizer(ggufName: preName) else {
            throw .unsupported("pre-tokenizer '\(preName)' (supported: gpt2, smollm)")
        }
        guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array?.compactMap(\.string) else { throw .malformed("no tokenizer.ggml.tokens") }
        let merges = gguf.metadata["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw .malformed("token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        var specials: [Int] = []
        for (i, t) in types.enumerated() where Self.literalTypes.contains(t) { specials.append(i) }
        func id(_ key: String) -> Token? { gguf.int("tokenizer.ggml.\(key)").flatMap { $0 >= 0 && $0 < tokens.count ? Token($0) : nil } }
        try self.init(
            vocabulary: tokens, merges: merges, specialIds: specials, preTokenizer: pre,
            bos: id("bos_token_id"), eos: id("eos_token_id"), pad: id("padding_token_id"),
            addBOS: gguf.metadata["tokenizer.ggml.add_bos_token"] == .bool(true))
    }

    public init(
        vocabulary: [String], merges mergeLines: [String], specialIds: [Int], preTokenizer: PreTokenizer,
        bos: Token?, eos: Token?, pad: Token?, addBOS: Bool
    ) throws(LoadError) {
        self.vocabulary = vocabulary
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.addBOS = addBOS
        self.mergeLines = mergeLines
        var index: [String: Token] = [:]
        index.reserveCapacity(vocabulary.count)
        for (i, t) in vocabulary.enumerated() where index[t] == nil { index[t] = Token(i) }
        var special: [Token: String] = [:]
        for i in specialIds { special[Token(i)] = vocabulary[i] }
        specialTokens = special
        bytesOfToken = vocabulary.enumerated().map { i, t in
            special[Token(i)] != nil ? Array(t.utf8) : (ByteLevel.decode(t) ?? Array(t.utf8))
        }
        // Some vocabularies lack tokens for a few control bytes and for bytes that never occur in
        // UTF-8; like Hugging Face's BPE without an unknown token, such bytes are left out.
        var byteIds = [Token](repeating: -1, count: 256)
        for b in 0..<256 { byteIds[b] = index[String(ByteLevel.byteToScalar[b])] ?? -1 }
        guard byteIds[Int(UInt8(ascii: "a"))] >= 0, byteIds[Int(UInt8(ascii: " "))] >= 0 else {
            throw .malformed("the vocabulary is not byte-level (no token for 'a' or ' ')")
        }
        idOfByte = byteIds
        var table: [UInt64: (rank: Int32, merged: Token)] = [:]
        table.reserveCapacity(mergeLines.count)
        for (rank, line) in mergeLines.enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = index[String(parts[0])], let b = index[String(parts[1])],
                let m = index[String(parts[0]) + String(parts[1])]
            else {
                throw .malformed("merge \(rank) '\(line)' refers to tokens not in the vocabulary")
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if table[key] == nil { table[key] = (Int32(rank), m) }
        }
        merges = table
        var byFirst: [UInt8: [([UInt8], Token)]] = [:]
        for (id, text) in special where !text.isEmpty {
            let bytes = Array(text.utf8)
            byFirst[bytes[0], default: []].append((bytes, id))
        }
        specialsByFirstByte = byFirst.mapValues { $0.sorted { $0.0.count > $1.0.count } }
    }

    /// Token ids of `text`; special tokens written in it become their ids. No BOS is added.
    public func encode(_ text: String) -> [Token] {
        var out: [Token] = []
        let utf8 = Array(text.utf8)
        var segmentStart = 0
        var i = 0
        while i < utf8.count {
            if let candidates = specialsByFirstByte[utf8[i]],
                let (bytes, id) = candidates.first(where: { c in
                    c.0.count <= utf8.count - i && utf8[i..<(i + c.0.count)].elementsEqual(c.0)
                })
            {
                if segmentStart < i { encodeOrdinary(utf8[segmentStart..<i], into: &out) }
                out.append(id)
                i += bytes.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        if segmentStart < utf8.count { encodeOrdinary(utf8[segmentStart..<utf8.count], into: &out) }
        return out
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, into out: inout [Token]) {
        let scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        var pieceBytes: [UInt8] = []
        for range in preTokenizer.split(scalars) {
            pieceBytes.removeAll(keepingCapacity: true)
            for s in scalars[range] { pieceBytes.append(contentsOf: UTF8.encode(s)!) }
            bpe(pieceBytes, into: &out)
        }
    }

    /// Merges the byte symbols of one piece, lowest rank first, leftmost first among equals.
    private func bpe(_ bytes: [UInt8], into out: inout [Token]) {
        var symbols = bytes.compactMap { b -> Token? in
            let id = idOfByte[Int(b)]
            return id >= 0 ? id : nil
        }
        while symbols.count > 1 {
            var bestRank = Int32.max
            var best = -1
            var merged: Token = 0
            for i in 0..<(symbols.count - 1) {
                if let m = merges[UInt64(UInt32(symbols[i])) << 32 | UInt64(UInt32(symbols[i + 1]))], m.rank < bestRank {
                    bestRank = m.rank
                    best = i
                    merged = m.merged
                }
            }
            if best < 0 { break }
            let a = symbols[best], b = symbols[best + 1]
            var next: [Token] = Array(symbols[..<best])
            next.reserveCapacity(symbols.count)
            var i = best
            while i < symbols.count {
                if i + 1 < symbols.count && symbols[i] == a && symbols[i + 1] == b {
                    next.append(merged)
                    i += 2
                } else {
                    next.append(symbols[i])
                    i += 1
                }
            }
            symbols = next
        }
        out.append(contentsOf: symbols)
    }

    /// The bytes a token stands for (a special token: its text).
    public func bytes(of token: Token) -> [UInt8] {
        token >= 0 && Int(token) < bytesOfToken.count ? bytesOfToken[Int(token)] : []
    }

    /// Text of `tokens`; invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD.
    public func decode(_ tokens: [Token]) -> String {
        var bytes: [UInt8] = []
        for t in tokens { bytes.append(contentsOf: self.bytes(of: t)) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Turns generated tokens into text as they arrive, holding back an incomplete UTF-8 sequence
/// until the bytes that complete it arrive.
public struct StreamingDecoder {
    private var pending: [UInt8] = []

    public init() {}

    /// Text that became complete with `bytes`.
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        var cut = pending.count
        // Find the start of a trailing sequence that is not complete yet.
        var k = pending.count - 1
        var back = 0
        while k >= 0 && back < 4 && pending[k] & 0xC0 == 0x80 {
            k -= 1
            back += 1
        }
        if k >= 0 {
            let lead = pending[k]
            let need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if need > 1 && pending.count - k < need { cut = k }
        }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Whatever is left at the end (an incomplete sequence becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }
}
