/// How a checkpoint formats a conversation, read from its chat template. Every stage uses the one
/// convention: the prompt is the formatted user turn up to the assistant header, the completion
/// is the response followed by the end-of-turn marker; each is tokenized on its own.
public struct ChatFormat: Sendable, Equatable {
    public enum Style: String, Sendable { case chatml, llama3 }

    public let style: Style
    /// The system message the template inserts when the conversation has none.
    public let defaultSystem: String?

    public init(style: Style, defaultSystem: String?) {
        self.style = style
        self.defaultSystem = defaultSystem
    }

    /// Recognises ChatML and Llama 3 templates; nil for anything else.
    public init?(template: String) {
        if template.contains("<|im_start|>") {
            style = .chatml
            // The default system message sits in a Jinja string literal, written either with a
            // real newline or with a `\n` escape.
            if let raw = Self.between(template, "<|im_start|>system\n", "<|im_end|>") {
                defaultSystem = raw
            } else {
                defaultSystem = Self.between(template, "<|im_start|>system\\n", "<|im_end|>").map(Self.unescapeJinja)
            }
        } else if template.contains("<|start_header_id|>") {
            style = .llama3
            defaultSystem = nil
        } else {
            return nil
        }
    }

    static func unescapeJinja(_ s: String) -> String {
        var out = ""
        var escaped = false
        for ch in s {
            if escaped {
                switch ch {
                case "n": out.append("\n")
                case "t": out.append("\t")
                default: out.append(ch)
                }
                escaped = false
            } else if ch == "\\" {
                escaped = true
            } else {
                out.append(ch)
            }
        }
        return out
    }

    static func between(_ s: String, _ a: String, _ b: String) -> String? {
        guard let r = s.firstRange(of: a), let e = s[r.upperBound...].firstRange(of: b) else { return nil }
        return String(s[r.upperBound..<e.lowerBound])
    }

    /// The prompt for one user message, ending where the assistant's answer begins.
    public func prompt(user: String, system: String? = nil) -> String {
        let sys = system ?? defaultSystem
        switch style {
        case .chatml:
            let head = sys.map { "<|im_start|>system\n\($0)<|im_end|>\n" } ?? ""
            return head + "<|im_start|>user\n\(user)<|im_end|>\n<|im_start|>assistant\n"
        case .llama3:
            let head = sys.map { "<|start_header_id|>system<|end_header_id|>\n\n\($0)<|eot_id|>" } ?? ""
            return "<|begin_of_text|>" + head
                + "<|start_header_id|>user<|end_header_id|>\n\n\(user)<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        }
    }

    /// The completion text a response is scored and trained as.
    public func completion(_ response: String) -> String {
        switch style {
        case .chatml: return response + "<|im_end|>"
        case .llama3: return response + "<|eot_id|>"
        }
    }

    /// The marker that ends the assistant's turn, a stop string for generation.
    public var endOfTurn: String { style == .chatml ? "<|im_end|>" : "<|eot_id|>" }
}
