/// The instruction-generation prompt and the filters applied to what the teacher writes, after
/// the Montessori-Instruct reference code (which follows Self-Instruct).
public enum InstructionPrompt {
    /// The user message sent to the teacher, listing the example tasks.
    public static func build(examples: [String]) -> String {
        var s = "You are asked to come up with one new task instruction for an AI assistant. Here are some example tasks:\n\n"
        for (i, e) in examples.enumerated() { s += "\(i + 1). \(e)\n" }
        s += "\nWrite exactly one new task instruction that is different from the examples. It must be self-contained, "
        s += "answerable in text, and at most three sentences long. Put it between <instruction> and </instruction>."
        return s
    }

    /// The text of the last <instruction>…</instruction> block, or nil. With `closedByEnd`
    /// (the teacher ended its turn), an opening tag without a closing one runs to the end.
    public static func extract(_ raw: String, closedByEnd: Bool = false) -> String? {
        if let close = raw.ranges(of: "</instruction>").last {
            let before = raw[..<close.lowerBound]
            if let open = before.ranges(of: "<instruction>").last { return String(before[open.upperBound...]) }
        }
        if closedByEnd, let open = raw.ranges(of: "<instruction>").last, !raw[open.upperBound...].contains("</instruction>") {
            return String(raw[open.upperBound...])
        }
        return nil
    }

    /// Words that mark tasks a text model cannot do (Self-Instruct's list), matched as whole words.
    public static let unsuitableWords = [
        "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
        "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
    ]

    public enum Rejection: String, CaseIterable, Sendable, Error {
        case noInstructionBlock = "no_instruction_block"
        case tooShort = "too_short"
        case tooLong = "too_long"
        case unsuitableWord = "unsuitable_word"
        case leadingPunctuation = "leading_punctuation"
        case nonASCIIStart = "non_ascii_start"
    }

    /// Whitespace collapsed, trimmed, first letter capitalised; or why the text is rejected.
    public static func clean(_ text: String) -> Result<String, Rejection> {
        let collapsed = text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        guard let first = collapsed.first else { return .failure(.tooShort) }
        let s = first.uppercased() + collapsed.dropFirst()
        if s.count < 6 { return .failure(.tooShort) }
        if s.count > 400 { return .failure(.tooLong) }
        if first.isPunctuation || first.isSymbol { return .failure(.leadingPunctuation) }
        if !first.isASCII { return .failure(.nonASCIIStart) }
        let lower = " " + s.lowercased().map { $0.isLetter || $0.isNumber ? $0 : " " }.reduce(into: "") { $0.append($1) } + " "
        for w in unsuitableWords where lower.contains(" \(w) ") { return .failure(.unsuitableWord) }
        return .success(s)
    }
}
