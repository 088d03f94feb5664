import CSupport

/// How the matrix products with the model's weights are computed.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// f32 operands on OpenBLAS.
    case f32
    /// Operands rounded to bf16, sums in f32 (`BF16Products`); weights, optimizer state and
    /// everything outside the products stay f32, as in mixed-precision training.
    case bf16

    /// bf16 where bf16 products are the faster ones on this CPU (AMX tiles, or AVX512-BF16 on AMD:
    /// Intel's cores run AVX512-BF16 at the f32 rate, measured in BENCHMARKS.md), else f32.
    public static var fastest: ComputePrecision { mi_bf16_preferred() != 0 ? .bf16 : .f32 }

    /// What a new `LlamaModel` computes in. The library's default is f32; the command-line tools
    /// set it from `--compute` or `MI_COMPUTE` (default: `fastest`).
    public nonisolated(unsafe) static var processDefault = ComputePrecision.f32
}

/// Matrix products with operands rounded to bf16 (to nearest, ties to even) and f32 sums, on
/// CSupport's bf16gemm.c: AMX tiles or AVX512-BF16 where the CPU has them, else a portable loop
/// with the same operand rounding. The right-hand operand is packed once (`Packed`) and the left one converted
/// per product; the work is split over the cores by panels of 16 output columns.
public enum BF16Products {
    public static var native: Bool { mi_bf16_fast() != 0 }
    /// The kernel in use: "amx", "avx512-bf16" or "portable".
    public static var kernel: String { String(cString: mi_bf16_kernel()) }

    /// A right-hand operand B [k, n] in bf16 panels.
    public final class Packed: @unchecked Sendable {
        public let k: Int
        public let n: Int
        let pointer: UnsafeMutablePointer<UInt16>

        public init(k: Int, n: Int) {
            self.k = k
            self.n = n
            pointer = .allocate(capacity: max(1, mi_bf16_packed_count(k, n)))
        }

        deinit { pointer.deallocate() }

        /// B[i][j] = source[j · ld + i] with `byRows` (a weight [n, k], as in x·Wᵀ), else source[i · ld + j].
        public func pack(_ source: UnsafePointer<Float>, ld: Int, byRows: Bool) {
            let s = SendablePointer(UnsafeMutablePointer(mutating: source)), d = SendablePointer(pointer)
            let (k, n) = (self.k, self.n)
            Parallel.chunks(mi_bf16_panels(n), minimumPerChunk: 4) { from, to in
                mi_bf16_pack(s.p, ld, byRows ? 1 : 0, k, n, from, to, d.p)
            }
        }
    }

    /// C[m, n] (+)= A · B. A is [m, k] with rows `lda` apart or, with `transposedA`, the transpose
    /// of a [k, m] matrix with rows `lda` apart.
    public static func multiply(
        _ a: UnsafePointer<Float>, lda: Int, transposedA: Bool = false, rows m: Int, _ b: Packed, _ c: UnsafeMutablePointer<Float>,
        ldc: Int, accumulate: Bool = false
    ) {
        let k = b.k, n = b.n, kp = mi_bf16_even(k)
        guard m > 0, n > 0 else { return }
        let a16 = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, m * kp))
        defer { a16.deallocate() }
        let src = SendablePointer(UnsafeMutablePointer(mutating: a)), dst = SendablePointer(a16)
        Parallel.chunks(m, minimumPerChunk: 16) { from, to in
            let out = dst.p + from * kp
            if transposedA {
                mi_bf16_convert_columns(src.p + from, lda, k, to - from, out)
            } else {
                mi_bf16_convert_rows(src.p + from * lda, lda, to - from, k, out)
            }
        }
        let panels = mi_bf16_panels(n), groups = (panels + 2) / 3
        let bp = SendablePointer(b.pointer), cp = SendablePointer(c)
        Parallel.chunks(groups) { from, to in
            mi_bf16_gemm(m, n, kp, dst.p, bp.p, from * 3, min(panels, to * 3), cp.p, ldc, accumulate ? 1 : 0)
        }
    }
}
