import COpenBLAS

/// Row-major matrix products on OpenBLAS. Shapes in comments are [rows, columns].
public enum BLAS {
    /// C[m,n] (+)= A[m,k] · B[n,k]ᵀ — activations times a weight stored as [out, in] (Hugging Face layout).
    @inline(__always)
    public static func matmulT(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, accumulate: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? k), b, Int32(ldb ?? k), accumulate ? 1 : 0, c, Int32(ldc ?? n))
    }

    /// C[m,n] (+)= A[m,k] · B[k,n].
    @inline(__always)
    public static func matmul(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, accumulate: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? k), b, Int32(ldb ?? n), accumulate ? 1 : 0, c, Int32(ldc ?? n))
    }

    /// C[m,n] (+)= A[k,m]ᵀ · B[k,n] — the weight gradient of a linear layer.
    @inline(__always)
    public static func matmulTA(
        _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, lda: Int? = nil, ldb: Int? = nil, ldc: Int? = nil,
        alpha: Float = 1, accumulate: Bool = false
    ) {
        cblas_sgemm(
            CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
            a, Int32(lda ?? m), b, Int32(ldb ?? n), accumulate ? 1 : 0, c, Int32(ldc ?? n))
    }

    public static var threads: Int { Int(openblas_get_num_threads()) }
}
