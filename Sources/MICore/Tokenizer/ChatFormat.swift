/// How a checkpoint formats a conversation, read from its chat template or named by the user. Every
/// stage uses the one convention: the prompt is the formatted user turn up to where the assistant's
/// answer begins, the completion is the answer followed by the end-of-turn marker; the prompt is
/// tokenized as the start of a text, the completion as its continuation (`completionIds`).
public struct ChatFormat: Sendable, Equatable {
    public enum Style: String, Sendable, CaseIterable {
        /// `<|im_start|>user\n…<|im_end|>\n<|im_start|>assistant\n` (SmolLM2, Qwen2).
        case chatml
        /// `<s>[INST] <<SYS>>\n…\n<</SYS>>\n\n… [/INST] answer </s>` (Llama 2 chat).
        case llama2
        /// `<|start_header_id|>user<|end_header_id|>\n\n…<|eot_id|>` (Llama 3).
        case llama3
        /// `<|user|>\n…</s>\n<|assistant|>\n` (Zephyr, TinyLlama chat).
        case zephyr
    }

    public let style: Style
    /// The system message the template inserts when the conversation has none.
    public let defaultSystem: String?
    /// The tokenizer's BOS and EOS texts, which the Llama 2 and Zephyr formats write.
    public let bos: String
    public let eos: String

    public init(style: Style, defaultSystem: String?, bos: String = "<s>", eos: String = "</s>") {
        self.style = style
        self.defaultSystem = defaultSystem
        self.bos = bos
        self.eos = eos
    }

    /// Recognises a Jinja chat template by the markers each format writes; nil for anything else.
    public init?(template: String, bos: String = "<s>", eos: String = "</s>") {
        self.bos = bos
        self.eos = eos
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
        } else if template.contains("[INST]"), template.contains("[/INST]") {
            style = .llama2
            defaultSystem = nil
        } else if template.contains("<|assistant|>"), !template.contains("<|end|>") {
            // Zephyr writes each turn as <|role|>\n…EOS\n (Phi-3, with <|end|> instead, is not this format).
            style = .zephyr
            defaultSystem = nil
        } else {
            return nil
        }
    }

    /// The format a `--chat-template` argument names: a built-in name, or a file holding a Jinja
    /// template (recognised as one of the built-ins). Nil (with the reason) when it is neither.
    public static func named(_ nameOrTemplate: String, fileText: String?, bos: String, eos: String) -> Result<ChatFormat, ChatTemplateError> {
        if let style = Style(rawValue: nameOrTemplate) { return .success(ChatFormat(style: style, defaultSystem: nil, bos: bos, eos: eos)) }
        guard let text = fileText else { return .failure(.unknown(nameOrTemplate)) }
        guard let format = ChatFormat(template: text, bos: bos, eos: eos) else { return .failure(.unrecognised(nameOrTemplate)) }
        return .success(format)
    }

    /// A Jinja template that renders this format (what a checkpoint written with it carries).
    public var jinja: String {
        switch style {
        case .chatml:
            let system = defaultSystem.map {
                "{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n" + Self.escapeJinja($0)
                    + "<|im_end|>\\n' }}{% endif %}"
            }
            return "{% for message in messages %}" + (system ?? "")
                + "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endfor %}"
                + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
        case .llama3:
            return "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                + "'<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}{% endfor %}"
                + "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
        case .llama2:
            return "{% if messages[0]['role'] == 'system' %}{% set system = messages[0]['content'] %}"
                + "{% set turns = messages[1:] %}{% else %}{% set system = false %}{% set turns = messages %}{% endif %}"
                + "{% for message in turns %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' }}"
                + "{% if loop.first and system != false %}{{ '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' }}{% endif %}"
                + "{{ message['content'].strip() + ' [/INST]' }}{% else %}{{ ' ' + message['content'].strip() + ' ' + eos_token }}"
                + "{% endif %}{% endfor %}"
        case .zephyr:
            return "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
                + "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
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

    static func escapeJinja(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("'", with: "\\'").replacing("\n", with: "\\n")
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
        case .llama2:
            let head = sys.map { "<<SYS>>\n\($0)\n<</SYS>>\n\n" } ?? ""
            return bos + "[INST] " + head + user.trimmingWhitespaceAtEnds() + " [/INST]"
        case .zephyr:
            let head = sys.map { "<|system|>\n\($0)\(eos)\n" } ?? ""
            return head + "<|user|>\n\(user)\(eos)\n<|assistant|>\n"
        }
    }

    /// The completion text a response is scored and trained as; without the end-of-turn marker
    /// for a response that was cut off (`ended: false`).
    public func completion(_ response: String, ended: Bool = true) -> String {
        switch style {
        case .llama2: return " " + response.trimmingWhitespaceAtEnds() + (ended ? " " + eos : "")
        default: return response + (ended ? endOfTurn : "")
        }
    }

    /// The marker that ends the assistant's turn, a stop string for generation.
    public var endOfTurn: String {
        switch style {
        case .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .llama2, .zephyr: return eos
        }
    }

    /// Token ids of the prompt for one user message.
    public func promptIds(user: String, system: String? = nil, tokenizer: BPETokenizer) -> [Int32] {
        tokenizer.encode(prompt(user: user, system: system))
    }

    /// Token ids of a completion, tokenized as the continuation of its prompt.
    public func completionIds(_ response: String, ended: Bool = true, tokenizer: BPETokenizer) -> [Int32] {
        tokenizer.encode(completion(response, ended: ended), continuing: true)
    }

}

/// Why a `--chat-template` argument or a checkpoint's template cannot be used.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    case unknown(String)
    case unrecognised(String)
    case missing(String)
    case notRecognised(String)
    /// A template file that exists but cannot be read (the reason, with the path).
    case unreadable(String)
    case empty(String)

    static let names = ChatFormat.Style.allCases.map(\.rawValue).joined(separator: ", ")

    public var description: String {
        switch self {
        case let .unknown(a): return "--chat-template \(a): neither a built-in format (\(Self.names)) nor a file"
        case let .unreadable(why): return "--chat-template \(why)"
        case let .empty(f): return "--chat-template \(f): the template file is empty"
        case let .unrecognised(f): return "\(f): a chat template this tool does not know; name one of \(Self.names) with --chat-template"
        case let .missing(m): return "\(m): the model has no chat template; name one with --chat-template (\(Self.names)) or a template file"
        case let .notRecognised(m):
            return "\(m): the model's chat template is not one this tool knows; name one with --chat-template (\(Self.names)) or a template file"
        }
    }
}

extension String {
    /// Without leading and trailing whitespace (generated text often starts or ends with some).
    public func trimmingWhitespaceAtEnds() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
