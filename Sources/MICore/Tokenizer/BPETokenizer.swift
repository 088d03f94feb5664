/// BPE tokenizer: special tokens written literally in the text map to their ids; the rest is
/// either byte-level (GPT-2 family: pre-tokenized, spelled in GPT-2's byte alphabet) or
/// SentencePiece-style (Llama 2 family: spaces as `▁`, characters, byte fallback), then merged by
/// rank.
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
    /// The merges in rank order ("left right"), as the vocabulary files store them, each pair
    /// once (see `RepeatedMerge`).
    public let mergeLines: [String]
    /// A piece that is a token of the vocabulary as a whole becomes that token without merging
    /// (tokenizer.json `ignore_merges`; llama.cpp sets it for Llama 3's pre-tokenizer).
    public let ignoreMerges: Bool
    /// SentencePiece-style spelling; nil for byte-level BPE.
    public let sentencePiece: SentencePieceSpelling?
    /// Piece scores (GGUF `tokenizer.ggml.scores`), where the vocabulary came with them.
    public let scores: [Float]?

    let bytesOfToken: [[UInt8]]
    let idOfByte: [Token]
    /// SentencePiece-style: the piece of each character that has one.
    let idOfScalar: [UInt32: Token]
    /// (left << 32 | right) -> (rank, merged id)
    let merges: [UInt64: (rank: Int32, merged: Token)]
    /// Special token texts by their first UTF-8 byte, longest first.
    let specialsByFirstByte: [UInt8: [([UInt8], Token)]]
    /// With `ignoreMerges`: the ordinary tokens by their vocabulary spelling.
    let wholePieces: [String: Token]

    /// Which rank a pair listed twice among the merges keeps: llama.cpp keeps the first (GGUF
    /// files), `tokenizers` the last (tokenizer.json). The other line is dropped from `mergeLines`,
    /// so an exported file means the same to either reader.
    public enum RepeatedMerge: Sendable { case first, last }

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

    /// GGUF token types (llama.cpp): 1 normal, 2 unknown, 3 control, 6 byte.
    static let normalType = 1, unknownType = 2, controlType = 3, byteType = 6

    /// From a GGUF file: `tokenizer.ggml.model` "gpt2" (byte-level, with merges) or "llama"
    /// (SentencePiece-style, with scores; merges follow from them).
    public convenience init(gguf: GGUFFile) throws(LoadError) {
        guard let model = gguf.string("tokenizer.ggml.model") else { throw .malformed("no tokenizer.ggml.model") }
        guard model == "gpt2" || model == "llama" else {
            throw .unsupported("tokenizer model '\(model)' (supported: 'gpt2', byte-level BPE; 'llama', SentencePiece BPE)")
        }
        guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.array?.compactMap(\.string) else { throw .malformed("no tokenizer.ggml.tokens") }
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.array?.compactMap(\.int) ?? []
        guard types.isEmpty || types.count == tokens.count else {
            throw .malformed("token_type has \(types.count) entries for \(tokens.count) tokens")
        }
        func id(_ key: String) -> Token? { gguf.int("tokenizer.ggml.\(key)").flatMap { $0 >= 0 && $0 < tokens.count ? Token($0) : nil } }
        let bos = id("bos_token_id"), eos = id("eos_token_id"), addBOS = gguf.metadata["tokenizer.ggml.add_bos_token"] == .bool(true)
        var specials: [Int] = []
        if model == "llama" {
            guard let scores = gguf.metadata["tokenizer.ggml.scores"]?.array?.compactMap({ $0.double.map(Float.init) }),
                scores.count == tokens.count,
                types.count == tokens.count
            else { throw .malformed("a 'llama' tokenizer needs scores and token types for all \(tokens.count) tokens") }
            // The unknown token is matched literally too, as Hugging Face's added tokens are.
            for (i, t) in types.enumerated() where Self.literalTypes.contains(t) || t == Self.unknownType { specials.append(i) }
            let unknown = id("unknown_token_id") ?? types.firstIndex(of: Self.unknownType).map(Token.init)
            let spaced = gguf.metadata["tokenizer.ggml.add_space_prefix"] != .bool(false)
            let merges = SentencePieceSpelling.merges(
                vocabulary: tokens, scores: scores, normal: types.map { $0 == Self.normalType })
            try self.init(
                vocabulary: tokens, merges: merges, specialIds: specials, preTokenizer: .gpt2, bos: bos, eos: eos,
                pad: id("padding_token_id"), addBOS: addBOS,
                sentencePiece: SentencePieceSpelling(prefix: spaced ? .always : .never, unknown: unknown), scores: scores)
            return
        }
        let preName = gguf.string("tokenizer.ggml.pre") ?? "default"
        guard let pre = PreTokenizer(ggufName: preName) else {
            throw .unsupported("pre-tokenizer '\(preName)' (supported: gpt2, smollm, llama-bpe, smaug-bpe, qwen2)")
        }
        let merges = gguf.metadata["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        for (i, t) in types.enumerated() where Self.literalTypes.contains(t) { specials.append(i) }
        try self.init(
            vocabulary: tokens, merges: merges, specialIds: specials, preTokenizer: pre,
            bos: bos, eos: eos, pad: id("padding_token_id"), addBOS: addBOS, ignoreMerges: Self.ignoresMerges(preName))
    }

    /// Whether llama.cpp tokenizes a GGUF file with this `tokenizer.ggml.pre` with ignore_merges
    /// (Llama 3's names; "smaug-bpe" has the same regex without it).
    static func ignoresMerges(_ ggufPre: String) -> Bool { ["llama-bpe", "llama3", "llama-v3"].contains(ggufPre) }

    public init(
        vocabulary: [String], merges mergeLines: [String], specialIds: [Int], preTokenizer: PreTokenizer,
        bos: Token?, eos: Token?, pad: Token?, addBOS: Bool, sentencePiece: SentencePieceSpelling? = nil, scores: [Float]? = nil,
        ignoreMerges: Bool = false, repeatedMerges: RepeatedMerge = .first
    ) throws(LoadError) {
        self.vocabulary = vocabulary
        self.preTokenizer = preTokenizer
        self.bos = bos
        self.eos = eos
        self.pad = pad
        self.addBOS = addBOS
        self.ignoreMerges = ignoreMerges
        self.sentencePiece = sentencePiece
        self.scores = scores
        var index: [String: Token] = [:]
        index.reserveCapacity(vocabulary.count)
        for (i, t) in vocabulary.enumerated() where index[t] == nil { index[t] = Token(i) }
        var special: [Token: String] = [:]
        for i in specialIds { special[Token(i)] = vocabulary[i] }
        specialTokens = special
        var byteIds = [Token](repeating: -1, count: 256)
        var scalarIds: [UInt32: Token] = [:]
        if sentencePiece != nil {
            bytesOfToken = vocabulary.enumerated().map { i, t in
                if special[Token(i)] != nil { return Array(t.utf8) }
                if let b = SentencePieceSpelling.byteOfToken(t) { return [b] }
                return Array(t.replacing("\u{2581}", with: " ").utf8)
            }
            for b in 0..<256 { byteIds[b] = index[SentencePieceSpelling.byteToken(UInt8(b))] ?? -1 }
            for (i, t) in vocabulary.enumerated() where special[Token(i)] == nil {
                let scalars = t.unicodeScalars
                if scalars.count == 1, scalarIds[scalars.first!.value] == nil { scalarIds[scalars.first!.value] = Token(i) }
            }
        } else {
            bytesOfToken = vocabulary.enumerated().map { i, t in
                special[Token(i)] != nil ? Array(t.utf8) : (ByteLevel.decode(t) ?? Array(t.utf8))
            }
            // Some vocabularies lack tokens for a few control bytes and for bytes that never occur in
            // UTF-8; like Hugging Face's BPE without an unknown token, such bytes are left out.
            for b in 0..<256 { byteIds[b] = index[String(ByteLevel.byteToScalar[b])] ?? -1 }
            guard byteIds[Int(UInt8(ascii: "a"))] >= 0, byteIds[Int(UInt8(ascii: " "))] >= 0 else {
                throw .malformed("the vocabulary is not byte-level (no token for 'a' or ' ')")
            }
        }
        idOfByte = byteIds
        idOfScalar = scalarIds
        var table: [UInt64: (rank: Int32, merged: Token)] = [:]
        table.reserveCapacity(mergeLines.count)
        var kept = [Bool](repeating: true, count: mergeLines.count)
        for (rank, line) in mergeLines.enumerated() {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, let a = index[String(parts[0])], let b = index[String(parts[1])],
                let m = index[String(parts[0]) + String(parts[1])]
            else {
                throw .malformed("merge \(rank) '\(line)' refers to tokens not in the vocabulary")
            }
            let key = UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))
            if let earlier = table[key] {
                guard repeatedMerges == .last else {
                    kept[rank] = false
                    continue
                }
                kept[Int(earlier.rank)] = false
            }
            table[key] = (Int32(rank), m)
        }
        merges = table
        self.mergeLines = kept.contains(false) ? mergeLines.indices.filter { kept[$0] }.map { mergeLines[$0] } : mergeLines
        if ignoreMerges {
            // The index less its special tokens, in place: nothing else reads it from here on.
            for (id, text) in special where index[text] == id { index[text] = nil }
            wholePieces = index
        } else {
            wholePieces = [:]
        }
        var byFirst: [UInt8: [([UInt8], Token)]] = [:]
        for (id, text) in special where !text.isEmpty {
            let bytes = Array(text.utf8)
            byFirst[bytes[0], default: []].append((bytes, id))
        }
        specialsByFirstByte = byFirst.mapValues { $0.sorted { $0.0.count > $1.0.count } }
    }

    /// Token ids of `text`; special tokens written in it become their ids. No BOS is added. A
    /// `continuing` text follows earlier text (a completion after its prompt): a SentencePiece-style
    /// tokenizer puts no `▁` before its start.
    public func encode(_ text: String, continuing: Bool = false) -> [Token] {
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
                if segmentStart < i { encodeOrdinary(utf8[segmentStart..<i], continuing: continuing, into: &out) }
                out.append(id)
                i += bytes.count
                segmentStart = i
            } else {
                i += 1
            }
        }
        if segmentStart < utf8.count { encodeOrdinary(utf8[segmentStart..<utf8.count], continuing: continuing, into: &out) }
        return out
    }

    private func encodeOrdinary(_ bytes: ArraySlice<UInt8>, continuing: Bool, into out: inout [Token]) {
        var scalars = Array(String(decoding: bytes, as: UTF8.self).unicodeScalars)
        if let sentencePiece {
            encodeSentencePiece(&scalars, spelling: sentencePiece, atStart: bytes.startIndex == 0, continuing: continuing, into: &out)
            return
        }
        var pieceBytes: [UInt8] = []
        for range in preTokenizer.split(scalars) {
            pieceBytes.removeAll(keepingCapacity: true)
            for s in scalars[range] { pieceBytes.append(contentsOf: UTF8.encode(s)!) }
            if ignoreMerges, let whole = wholePieces[ByteLevel.encode(pieceBytes)] {
                out.append(whole)
                continue
            }
            var symbols = pieceBytes.compactMap { b -> Token? in
                let id = idOfByte[Int(b)]
                return id >= 0 ? id : nil
            }
            merge(&symbols)
            out.append(contentsOf: symbols)
        }
    }

    /// SentencePiece-style: spaces become `▁`, the dummy prefix goes first where the spelling
    /// says, and each piece's characters (or their byte tokens, or the unknown token, consecutive
    /// unknowns fused) are merged.
    private func encodeSentencePiece(
        _ scalars: inout [Unicode.Scalar], spelling: SentencePieceSpelling, atStart: Bool, continuing: Bool,
        into out: inout [Token]
    ) {
        let space = SentencePieceSpelling.space
        for i in scalars.indices where scalars[i] == " " { scalars[i] = space }
        if spelling.prefixes(scalars, atStart: atStart, continuing: continuing) { scalars.insert(space, at: 0) }
        var start = 0
        while start < scalars.count {
            var end = start + 1
            if spelling.splitWords { while end < scalars.count && scalars[end] != space { end += 1 } } else { end = scalars.count }
            defer { start = end }
            if ignoreMerges, let whole = wholePieces[String(String.UnicodeScalarView(scalars[start..<end]))] {
                out.append(whole)
                continue
            }
            var symbols: [Token] = []
            for s in scalars[start..<end] {
                if let id = idOfScalar[s.value] {
                    symbols.append(id)
                    continue
                }
                let bytes = UTF8.encode(s)!.map { idOfByte[Int($0)] }
                if spelling.byteFallback, !bytes.contains(-1) {
                    symbols.append(contentsOf: bytes)
                } else if let unknown = spelling.unknown, symbols.last != unknown {
                    symbols.append(unknown)
                }
            }
            merge(&symbols)
            out.append(contentsOf: symbols)
        }
    }

    /// Merges adjacent symbols one pair at a time, the lowest rank first and the leftmost first
    /// among equals, as `tokenizers` and SentencePiece do: a pair formed by a merge can go before a
    /// later occurrence of the pair just merged. A min-heap of candidate pairs keyed by (rank,
    /// position of the left symbol) makes a piece of n symbols cost O(n log n); a stale entry
    /// (one of its symbols merged away since) is dropped when it comes up.
    private func merge(_ symbols: inout [Token]) {
        let n = symbols.count
        guard n > 1 else { return }
        var next = Array(1...n) // n: none
        var previous = Array(-1..<(n - 1))
        var heap = MergeHeap()
        // The merge of the symbol at `left` with the one after it, if there is one.
        func merge(at left: Int) -> (rank: Int32, merged: Token)? {
            guard next[left] < n else { return nil }
            return merges[UInt64(UInt32(symbols[left])) << 32 | UInt64(UInt32(symbols[next[left]]))]
        }
        func offer(_ left: Int) { if let m = merge(at: left) { heap.push(rank: m.rank, position: left) } }
        for i in 0..<(n - 1) { offer(i) }
        while let (rank, left) = heap.pop() {
            // Stale: the left symbol was merged into its neighbour, or its pair changed.
            guard symbols[left] >= 0, let m = merge(at: left), m.rank == rank else { continue }
            let right = next[left]
            symbols[left] = m.merged
            symbols[right] = -1
            next[left] = next[right]
            if next[left] < n { previous[next[left]] = left }
            if previous[left] >= 0 { offer(previous[left]) }
            offer(left)
        }
        var i = 0
        var out: [Token] = []
        out.reserveCapacity(n)
        while i < n {
            out.append(symbols[i])
            i = next[i]
        }
        symbols = out
    }

    /// The bytes a token stands for (a special token: its text).
    public func bytes(of token: Token) -> [UInt8] {
        token >= 0 && Int(token) < bytesOfToken.count ? bytesOfToken[Int(token)] : []
    }

    /// Text of `tokens`; invalid UTF-8 (a sequence cut mid-character) becomes U+FFFD. A
    /// SentencePiece-style tokenizer drops the dummy prefix's space at the start, as its decoder does.
    public func decode(_ tokens: [Token]) -> String {
        var bytes: [UInt8] = []
        for t in tokens { bytes.append(contentsOf: self.bytes(of: t)) }
        let text = String(decoding: bytes, as: UTF8.self)
        return stripsLeadingSpace && text.hasPrefix(" ") ? String(text.dropFirst()) : text
    }

    /// Whether decoded text loses one leading space (the dummy prefix of SentencePiece spelling).
    public var stripsLeadingSpace: Bool { sentencePiece.map { $0.prefix != .never } ?? false }
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

/// A binary min-heap of BPE merge candidates, each (rank, position) packed into one UInt64 so
/// the order is the rank's, then the position's.
private struct MergeHeap {
    private var keys: [UInt64] = []

    mutating func push(rank: Int32, position: Int) {
        keys.append(UInt64(UInt32(rank)) << 32 | UInt64(position))
        var child = keys.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard keys[child] < keys[parent] else { break }
            keys.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (rank: Int32, position: Int)? {
        guard let top = keys.first else { return nil }
        let last = keys.removeLast()
        if !keys.isEmpty {
            keys[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < keys.count && keys[left] < keys[smallest] { smallest = left }
                if right < keys.count && keys[right] < keys[smallest] { smallest = right }
                if smallest == parent { break }
                keys.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (Int32(truncatingIfNeeded: top >> 32), Int(top & 0xFFFF_FFFF))
    }
}
