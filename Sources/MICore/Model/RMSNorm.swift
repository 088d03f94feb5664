/// RMSNorm (Llama): y = x / sqrt(mean(x²) + eps) · w, per row of length `dim`.
enum RMSNorm {
    /// x, y: [rows, dim]; w: [dim]. Stores 1/rms per row in `inverseRMS` (needed by backward).
    static func forward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        rows: Int, dim: Int, eps: Float, inverseRMS: UnsafeMutablePointer<Float>? = nil) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim
            var ss: Float = 0
            for i in 0..<dim { ss += xr[i] * xr[i] }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            inverseRMS?[r] = inv
            for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
        }
    }
}
