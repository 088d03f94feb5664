/// Splits text into the pieces BPE runs on, like the regular expressions of Hugging Face
/// `tokenizers` and llama.cpp, written out by hand over Unicode scalars.
public enum PreTokenizer: String, Sendable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2
    /// SmolLM / StarCoder: every digit is its own piece (`Digits(individual_digits)`), then GPT-2.
    case smollm
    /// Llama 3: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3
    /// Qwen2: as Llama 3 with single digits (`\p{N}` instead of `\p{N}{1,3}`).
    case qwen2

    /// The variant named by a GGUF file's `tokenizer.ggml.pre`.
    public init?(ggufName: String) {
        switch ggufName {
        case "gpt2", "default": self = .gpt2
        case "smollm", "starcoder", "refact": self = .smollm
        // llama.cpp gives "smaug-bpe" and "dbrx" Llama 3's regex without its ignore_merges.
        case "llama-bpe", "llama3", "llama-v3", "smaug-bpe", "dbrx": self = .llama3
        case "qwen2": self = .qwen2
        default: return nil
        }
    }

    enum Class { case letter, number, space, other }

    @inline(__always) static func classify(_ s: Unicode.Scalar) -> Class {
        if s.value < 0x80 {
            switch s.value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .space
            default: return .other
            }
        }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return p.isWhitespace ? .space : .other
        }
    }

    /// Ranges of `scalars` (as half-open index pairs), in order, covering all of it.
    func split(_ scalars: [Unicode.Scalar]) -> [Range<Int>] {
        var pieces: [Range<Int>] = []
        let classes = scalars.map(Self.classify)
        let n = scalars.count
        switch self {
        case .gpt2:
            gpt2Split(scalars, classes, 0, n, into: &pieces)
            return pieces
        case .llama3, .qwen2:
            var i = 0
            while i < n {
                let k = llama3Match(scalars, classes, i, maxDigits: self == .llama3 ? 3 : 1)
                pieces.append(i..<k)
                i = k
            }
            return pieces
        case .smollm:
            break
        }
        // Digits are split off first; the GPT-2 pattern then runs on each stretch between them,
        // which ends there as if the text ended.
        var start = 0
        for k in 0..<n where classes[k] == .number {
            if start < k { gpt2Split(scalars, classes, start, k, into: &pieces) }
            pieces.append(k..<(k + 1))
            start = k + 1
        }
        if start < n { gpt2Split(scalars, classes, start, n, into: &pieces) }
        return pieces
    }

    private func gpt2Split(_ s: [Unicode.Scalar], _ c: [Class], _ from: Int, _ end: Int, into pieces: inout [Range<Int>]) {
        var i = from
        while i < end {
            let k = gpt2Match(s, c, i, end)
            pieces.append(i..<k)
            i = k
        }
    }

    /// End of the GPT-2 pattern's match starting at `i` (alternatives tried in order), treating
    /// `end` as the end of the text.
    private func gpt2Match(_ s: [Unicode.Scalar], _ c: [Class], _ i: Int, _ end: Int) -> Int {
        // Contractions (lower case only, as in GPT-2).
        if s[i] == "'" && i + 1 < end {
            let a = s[i + 1]
            if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
            if i + 2 < end {
                let b = s[i + 2]
                if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
            }
        }
        // An optional single space, then a run of letters, of numbers, or of other symbols.
        let j = (s[i] == " " && i + 1 < end && c[i + 1] != .space) ? i + 1 : i
        if c[j] == .space { return whitespace(c, i, end) }
        var k = j + 1
        while k < end && c[k] == c[j] { k += 1 }
        return k
    }

    /// `\s+(?!\S)|\s+`: a whitespace run, leaving its last character to the next piece when a
    /// non-space follows and the run is longer than one.
    private func whitespace(_ c: [Class], _ i: Int, _ end: Int) -> Int {
        var k = i
        while k < end && c[k] == .space { k += 1 }
        if k < end && k - i > 1 { return k - 1 }
        return k
    }

    @inline(__always) static func isNewline(_ s: Unicode.Scalar) -> Bool { s == "\r" || s == "\n" }

    /// End of the Llama 3 pattern's match starting at `i`.
    private func llama3Match(_ s: [Unicode.Scalar], _ c: [Class], _ i: Int, maxDigits: Int) -> Int {
        let n = s.count
        // Contractions, any case.
        if s[i] == "'" && i + 1 < n {
            let a = s[i + 1].properties.lowercaseMapping
            if a == "s" || a == "t" || a == "m" || a == "d" { return i + 2 }
            if i + 2 < n {
                let b = s[i + 2].properties.lowercaseMapping
                if (a == "r" && b == "e") || (a == "v" && b == "e") || (a == "l" && b == "l") { return i + 3 }
            }
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c[i] == .letter || (c[i] != .number && !Self.isNewline(s[i]) && i + 1 < n && c[i + 1] == .letter) {
            var k = c[i] == .letter ? i + 1 : i + 2
            while k < n && c[k] == .letter { k += 1 }
            return k
        }
        // \p{N}{1,maxDigits}
        if c[i] == .number {
            var k = i + 1
            while k < n && k - i < maxDigits && c[k] == .number { k += 1 }
            return k
        }
        // " ?[^\s\p{L}\p{N}]+[\r\n]*"
        let j = (s[i] == " " && i + 1 < n && c[i + 1] == .other) ? i + 1 : i
        if c[j] == .other {
            var k = j + 1
            while k < n && c[k] == .other { k += 1 }
            while k < n && Self.isNewline(s[k]) { k += 1 }
            return k
        }
        // Whitespace: \s*[\r\n]+ ends after the run's last newline; else \s+(?!\S) | \s+.
        var end = i
        var lastNewline = -1
        while end < n && c[end] == .space {
            if Self.isNewline(s[end]) { lastNewline = end }
            end += 1
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        if end < n && end - i > 1 { return end - 1 }
        return end
    }
}
