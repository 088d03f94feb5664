import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// A model ready to run: weights, tokenizer and chat format, from a GGUF file.
public final class LoadedModel: @unchecked Sendable {
    public let path: String
    public let model: LlamaModel
    public let tokenizer: BPETokenizer
    /// The chat format: the one named by `--chat-template`, else the checkpoint's template
    /// recognised; nil when neither gives one (`requireChat()` says why).
    public let chat: ChatFormat?
    /// SHA-256 of the weights file (the .gguf, or model.safetensors / the index of a directory),
    /// computed on first use: records name the exact model that made them.
    public lazy var sha256: String = {
        let file =
            HuggingFaceDirectory.isDirectory(path)
            ? ["/model.safetensors", "/model.safetensors.index.json"].map { path + $0 }.first { access($0, R_OK) == 0 } ?? path
            : path
        return (try? SHA256.file(file)) ?? String(repeating: "0", count: 64)
    }()

    /// Tokens that end a turn: end-of-sequence and the chat format's end-of-turn marker.
    public var stopTokens: Set<Int32> {
        var stops = Set<Int32>()
        if let eos = tokenizer.eos { stops.insert(eos) }
        if let chat, case let ids = tokenizer.encode(chat.endOfTurn), ids.count == 1 { stops.insert(ids[0]) }
        return stops
    }

    /// The model's name for records: the last path component.
    public var name: String { path.split(separator: "/").last.map(String.init) ?? path }

    /// The checkpoint's chat template as written (kept when saving a checkpoint).
    public let chatTemplate: String?

    public enum LoadError: StageError {
        case gguf(GGUFError)
        case tokenizer(String, BPETokenizer.LoadError)
        case checkpoint(CheckpointError)
        case unsupportedFormat(String)
        case chatTemplate(ChatTemplateError)

        public var exitStatus: ExitStatus {
            switch self {
            case let .gguf(e): return e.exitStatus
            case let .checkpoint(e): return e.exitStatus
            case .tokenizer, .unsupportedFormat, .chatTemplate: return .dataError
            }
        }

        public var description: String {
            switch self {
            case let .gguf(e): return e.description
            case let .tokenizer(p, e): return "\(p): \(e)"
            case let .checkpoint(e): return e.description
            case let .unsupportedFormat(p): return "\(p): not a model this tool can read (expected a .gguf file or a Hugging Face directory)"
            case let .chatTemplate(e): return e.description
            }
        }
    }

    /// Loads a .gguf file or a Hugging Face directory (config.json, safetensors, tokenizer.json).
    /// `blockWeights` keeps a GGUF file's Q4_1/Q8_0 blocks mapped for fast decoding; training
    /// does not need them and saves the memory. `chatTemplate` (a built-in format's name or a
    /// template file) replaces the checkpoint's own template, also in checkpoints written from it.
    public init(path: String, blockWeights: Bool = true, chatTemplate override: String? = nil) throws(LoadError) {
        self.path = path
        var template: String?
        if HuggingFaceDirectory.isDirectory(path) {
            do {
                let dir = try HuggingFaceDirectory(path: path)
                model = LlamaModel(parameters: try dir.loadParameters())
                (tokenizer, template) = try dir.loadTokenizer()
            } catch { throw .checkpoint(error) }
        } else {
            let gguf: GGUFFile
            do { gguf = try GGUFFile(path: path) } catch { throw .gguf(error) }
            do {
                let parameters = try LlamaParameters(gguf: gguf)
                model = LlamaModel(parameters: parameters)
                if blockWeights { model.blockWeights = BlockWeights(gguf: gguf, parameters: parameters) }
            } catch { throw .gguf(error) }
            do { tokenizer = try BPETokenizer(gguf: gguf) } catch { throw .tokenizer(path, error) }
            template = gguf.string("tokenizer.chat_template")
        }
        let t = tokenizer
        let bos = t.bos.map { t.vocabulary[Int($0)] } ?? "<s>", eos = t.eos.map { t.vocabulary[Int($0)] } ?? "</s>"
        if let override {
            var text: String?
            if ChatFormat.Style(rawValue: override) == nil, access(override, F_OK) == 0 {
                // A path that exists is a template file: one it cannot read or an empty one is
                // refused as such, not as an unknown name.
                let fileText: String
                do {
                    fileText = try MappedFile(path: override).withBytes { String(decoding: $0, as: UTF8.self) }
                } catch { throw .chatTemplate(.unreadable(error.description)) }
                if fileText.allSatisfy(\.isWhitespace) { throw .chatTemplate(.empty(override)) }
                text = fileText
            }
            switch ChatFormat.named(override, fileText: text, bos: bos, eos: eos) {
            case let .success(format):
                chat = format
                chatTemplate = text ?? format.jinja
            case let .failure(e): throw .chatTemplate(e)
            }
        } else {
            chatTemplate = template
            chat = template.flatMap { ChatFormat(template: $0, bos: bos, eos: eos) }
        }
    }

    /// The chat format, or the one error every stage gives for a model it cannot format.
    public func requireChat() throws(LoadError) -> ChatFormat {
        if let chat { return chat }
        throw .chatTemplate(chatTemplate == nil ? .missing(path) : .notRecognised(path))
    }
}
