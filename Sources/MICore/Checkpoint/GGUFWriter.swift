import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Exports a model as a GGUF v3 file that llama.cpp-family tools run: llama.cpp's tensor names
/// and q/k row order, the tokenizer and chat template in its metadata, and weights in F32, F16
/// or Q8_0 (norm weights stay F32, as llama.cpp keeps them).
public enum GGUFWriter {
    public enum Format: String, Sendable, CaseIterable { case f32 = "F32", f16 = "F16", q8_0 = "Q8_0" }

    enum Value {
        case u32(UInt32), i32(Int32), f32(Float), bool(Bool), string(String), strings([String]), i32s([Int32]), f32s([Float])
    }

    /// The model's metadata keys, llama.cpp's names.
    static func metadata(_ c: LlamaConfig, tokenizer: BPETokenizer, chatTemplate: String?, name: String) -> [(String, Value)] {
        // Llama and Qwen2 share the keys, under their own prefix.
        let a = c.architecture
        var kv: [(String, Value)] = [
            ("general.architecture", .string(a)),
            ("general.name", .string(name)),
            ("general.alignment", .u32(32)),
            (a + ".block_count", .u32(UInt32(c.numHiddenLayers))),
            (a + ".context_length", .u32(UInt32(c.maxPositionEmbeddings))),
            (a + ".embedding_length", .u32(UInt32(c.hiddenSize))),
            (a + ".feed_forward_length", .u32(UInt32(c.intermediateSize))),
            (a + ".attention.head_count", .u32(UInt32(c.numAttentionHeads))),
            (a + ".attention.head_count_kv", .u32(UInt32(c.numKeyValueHeads))),
            (a + ".rope.freq_base", .f32(Float(c.ropeTheta))),
            (a + ".rope.dimension_count", .u32(UInt32(c.headDim))),
            (a + ".attention.layer_norm_rms_epsilon", .f32(Float(c.rmsNormEps))),
            (a + ".vocab_size", .u32(UInt32(c.vocabSize))),
        ]
        kv += tokenizerMetadata(tokenizer)
        if case let .linear(factor)? = c.ropeScaling {
            kv.append((a + ".rope.scaling.type", .string("linear")))
            kv.append((a + ".rope.scaling.factor", .f32(Float(factor))))
        }
        if let b = tokenizer.bos { kv.append(("tokenizer.ggml.bos_token_id", .u32(UInt32(b)))) }
        if let e = tokenizer.eos { kv.append(("tokenizer.ggml.eos_token_id", .u32(UInt32(e)))) }
        if let p = tokenizer.pad { kv.append(("tokenizer.ggml.padding_token_id", .u32(UInt32(p)))) }
        if let chatTemplate { kv.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return kv
    }

    /// `tokenizer.ggml.pre` for a byte-level tokenizer: llama.cpp's name for its regex with its
    /// ignore_merges (Llama 3's regex: "llama-bpe" with it, "smaug-bpe" without); nil where no
    /// name has both (ignore_merges with another regex).
    static func ggufPre(_ t: BPETokenizer) -> String? {
        switch (t.preTokenizer, t.ignoreMerges) {
        case (.llama3, true): return "llama-bpe"
        case (.llama3, false): return "smaug-bpe"
        case (_, false): return t.preTokenizer.rawValue
        case (_, true): return nil
        }
    }

    /// The tokenizer's keys: "gpt2" with merges, or SentencePiece-style "llama" with scores and
    /// token types (scores from the merge ranks when the vocabulary came without them).
    static func tokenizerMetadata(_ t: BPETokenizer) -> [(String, Value)] {
        let specials = t.specialTokens
        guard let sp = t.sentencePiece else {
            return [
                ("tokenizer.ggml.model", .string("gpt2")),
                ("tokenizer.ggml.pre", .string(ggufPre(t) ?? t.preTokenizer.rawValue)),
                ("tokenizer.ggml.tokens", .strings(t.vocabulary)),
                ("tokenizer.ggml.token_type", .i32s((0..<t.count).map { specials[Int32($0)] != nil ? 3 : 1 })),
                ("tokenizer.ggml.merges", .strings(t.mergeLines)),
                ("tokenizer.ggml.add_bos_token", .bool(t.addBOS)),
            ]
        }
        let types: [Int32] = t.vocabulary.enumerated().map { i, token in
            if Int32(i) == sp.unknown { return Int32(BPETokenizer.unknownType) }
            if specials[Int32(i)] != nil { return Int32(BPETokenizer.controlType) }
            return Int32(SentencePieceSpelling.byteOfToken(token) != nil ? BPETokenizer.byteType : BPETokenizer.normalType)
        }
        var scores = t.scores ?? []
        if scores.count != t.count {
            // A piece made by merge r scores -r - 1, so ranking merges by score gives back the order.
            var rankOf: [String: Int] = [:]
            for (r, line) in t.mergeLines.enumerated() {
                let merged = line.replacing(" ", with: "")
                if rankOf[merged] == nil { rankOf[merged] = r }
            }
            scores = t.vocabulary.map { Float(-(rankOf[$0] ?? t.mergeLines.count) - 1) }
        }
        var kv: [(String, Value)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .strings(t.vocabulary)),
            ("tokenizer.ggml.scores", .f32s(scores)),
            ("tokenizer.ggml.token_type", .i32s(types)),
            ("tokenizer.ggml.add_bos_token", .bool(t.addBOS)),
            ("tokenizer.ggml.add_space_prefix", .bool(sp.prefix != .never)),
        ]
        if let u = sp.unknown { kv.append(("tokenizer.ggml.unknown_token_id", .u32(UInt32(u)))) }
        return kv
    }

    /// Why `config` and `tokenizer` have no GGUF form, if they have none.
    static func unsupported(_ c: LlamaConfig, _ tokenizer: BPETokenizer) -> String? {
        if case .llama3? = c.ropeScaling {
            // llama.cpp stores this scaling as a rope_freqs tensor, which this writer does not produce.
            return "exporting a model with Llama 3 rope scaling to GGUF is not supported"
        }
        if tokenizer.ignoreMerges, tokenizer.sentencePiece != nil || ggufPre(tokenizer) == nil {
            // llama.cpp turns ignore_merges on only with Llama 3's pre-tokenizer names.
            let spelling = tokenizer.sentencePiece != nil ? "SentencePiece-style spelling" : "the \(tokenizer.preTokenizer.rawValue) pre-tokenizer"
            return "a tokenizer with ignore_merges and \(spelling) has no GGUF form"
        }
        return nil
    }

    public static func write(
        model: LlamaModel, tokenizer: BPETokenizer, chatTemplate: String?, name: String,
        format: Format, to path: String
    ) throws(StreamError) {
        let c = model.config, P = model.parameters
        if let reason = unsupported(c, tokenizer) { throw .cannotCreate(path: path, reason: reason) }
        let kv = metadata(c, tokenizer: tokenizer, chatTemplate: chatTemplate, name: name)

        // Tensors: name, GGUF dims (fastest first), type and bytes.
        var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []
        for e in P.entries where !(c.tieWordEmbeddings && e.name == "lm_head.weight") {
            guard let ggufName = LlamaParameters.ggufName(e.name) else { continue }
            var values = Array(UnsafeBufferPointer(start: P.pointer(e.offset), count: e.count))
            // llama.cpp's Llama RoPE wants q and k rows permuted; Qwen2's takes them as they are.
            if c.architecture == "llama", e.name.hasSuffix("q_proj.weight") || e.name.hasSuffix("k_proj.weight") {
                let heads = e.name.hasSuffix("q_proj.weight") ? c.numAttentionHeads : c.numKeyValueHeads
                values = permuteRoPERows(values, heads: heads, headDim: c.headDim, columns: c.hiddenSize)
            }
            let type: GGMLType = e.shape.count == 1 ? .f32 : (format == .f32 ? .f32 : format == .f16 ? .f16 : .q8_0)
            tensors.append((ggufName, e.shape.reversed(), type, encode(values, as: type)))
        }

        var out: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func str(_ s: String) {
            u64(UInt64(s.utf8.count))
            out.append(contentsOf: s.utf8)
        }
        u32(3)
        u64(UInt64(tensors.count))
        u64(UInt64(kv.count))
        for (key, value) in kv {
            str(key)
            switch value {
            case let .u32(v):
                u32(4)
                u32(v)
            case let .i32(v):
                u32(5)
                u32(UInt32(bitPattern: v))
            case let .f32(v):
                u32(6)
                u32(v.bitPattern)
            case let .bool(v):
                u32(7)
                out.append(v ? 1 : 0)
            case let .string(v):
                u32(8)
                str(v)
            case let .strings(vs):
                u32(9)
                u32(8)
                u64(UInt64(vs.count))
                for v in vs { str(v) }
            case let .i32s(vs):
                u32(9)
                u32(5)
                u64(UInt64(vs.count))
                for v in vs { u32(UInt32(bitPattern: v)) }
            case let .f32s(vs):
                u32(9)
                u32(6)
                u64(UInt64(vs.count))
                for v in vs { u32(v.bitPattern) }
            }
        }
        var offset = 0
        for t in tensors {
            str(t.name)
            u32(UInt32(t.dims.count))
            for d in t.dims { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += (t.data.count + 31) / 32 * 32
        }
        while out.count % 32 != 0 { out.append(0) }
        for t in tensors {
            out.append(contentsOf: t.data)
            while out.count % 32 != 0 { out.append(0) }
        }
        try OutputFile.write(out, to: path)
    }

    /// Inverse of LlamaParameters.unpermuteRoPERows: Hugging Face row j·(hd/2)+i goes to 2i+j.
    static func permuteRoPERows(_ w: [Float], heads: Int, headDim: Int, columns: Int) -> [Float] {
        var out = w
        let half = headDim / 2
        for h in 0..<heads {
            for i in 0..<half {
                for j in 0..<2 {
                    let src = (h * headDim + j * half + i) * columns, dst = (h * headDim + 2 * i + j) * columns
                    for k in 0..<columns { out[dst + k] = w[src + k] }
                }
            }
        }
        return out
    }

    static func encode(_ values: [Float], as type: GGMLType) -> [UInt8] {
        var out: [UInt8] = []
        switch type {
        case .f32:
            values.withUnsafeBytes { out.append(contentsOf: $0) }
        case .f16:
            out.reserveCapacity(values.count * 2)
            for v in values {
                let b = Float16(v).bitPattern
                out.append(UInt8(b & 0xFF))
                out.append(UInt8(b >> 8))
            }
        default:
            // Q8_0 as ggml quantises it: d = max|x| / 127 per block of 32, q = round(x / d).
            out.reserveCapacity(values.count / 32 * 34)
            for b in stride(from: 0, to: values.count, by: 32) {
                var amax: Float = 0
                for v in values[b..<(b + 32)] { amax = max(amax, abs(v)) }
                let d = amax / 127
                let inv: Float = d != 0 ? 1 / d : 0
                let h = Float16(d).bitPattern
                out.append(UInt8(h & 0xFF))
                out.append(UInt8(h >> 8))
                for v in values[b..<(b + 32)] { out.append(UInt8(bitPattern: Int8((v * inv).rounded()))) }
            }
        }
        return out
    }
}
