/// Tensor element types of GGUF files (ggml's numbering) with their block layouts.
public enum GGMLType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q4_1 = 3
    case q5_0 = 6
    case q5_1 = 7
    case q8_0 = 8
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case bf16 = 30

    /// Elements per block.
    public var blockElements: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0: return 32
        case .q4_K, .q5_K, .q6_K: return 256
        }
    }

    /// Bytes per block.
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q4_0: return 18 // f16 d, 16 bytes of nibbles
        case .q4_1: return 20 // f16 d, f16 m, 16 bytes of nibbles
        case .q5_0: return 22 // f16 d, u32 high bits, 16 bytes of nibbles
        case .q5_1: return 24 // f16 d, f16 m, u32 high bits, 16 bytes of nibbles
        case .q8_0: return 34 // f16 d, 32 int8
        case .q4_K: return 144 // f16 d, f16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
        case .q5_K: return 176 // as Q4_K plus 32 bytes of high bits
        case .q6_K: return 210 // 128 low nibbles, 64 high 2-bit pairs, 16 int8 scales, f16 d
        }
    }

    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .q4_0: return "Q4_0"
        case .q4_1: return "Q4_1"
        case .q5_0: return "Q5_0"
        case .q5_1: return "Q5_1"
        case .q8_0: return "Q8_0"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        }
    }

    /// Bytes needed for `elements` values, or nil when `elements` is not a whole number of blocks
    /// or the size overflows.
    public func byteCount(elements: Int) -> Int? {
        guard elements >= 0, elements % blockElements == 0 else { return nil }
        let (r, o) = (elements / blockElements).multipliedReportingOverflow(by: blockBytes)
        return o ? nil : r
    }
}
