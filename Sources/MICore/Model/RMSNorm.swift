/// RMSNorm (Llama): y = x / sqrt(mean(x²) + eps) · w, per row of length `dim`.
enum RMSNorm {
    /// x, y: [rows, dim]; w: [dim]. Stores 1/rms per row in `inverseRMS` (needed by backward).
    static func forward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
        rows: Int, dim: Int, eps: Float, inverseRMS: UnsafeMutablePointer<Float>? = nil
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim
            var ss: Float = 0
            for i in 0..<dim { ss += xr[i] * xr[i] }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            inverseRMS?[r] = inv
            for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
        }
    }

    /// dx += ∂L/∂x and dw += ∂L/∂w given dy, for y = w · x · r with r = 1/rms(x) per row:
    /// dx = r·(w⊙dy) − x · r³/dim · Σ(w⊙dy⊙x).
    static func backward(
        _ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
        inverseRMS: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, dw: UnsafeMutablePointer<Float>,
        rows: Int, dim: Int
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
            let inv = inverseRMS[r]
            var dot: Float = 0
            for i in 0..<dim {
                let g = w[i] * dyr[i]
                dot += g * xr[i]
                dw[i] += dyr[i] * xr[i] * inv
            }
            let c = inv * inv * inv * dot / Float(dim)
            for i in 0..<dim { dxr[i] += inv * w[i] * dyr[i] - c * xr[i] }
        }
    }

    /// The forward's output again from its input and the saved 1/rms (exactly the same values).
    static func recompute(
        _ x: UnsafePointer<Float>, _ inverseRMS: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
        into y: UnsafeMutablePointer<Float>, rows: Int, dim: Int
    ) {
        for r in 0..<rows {
            let xr = x + r * dim, yr = y + r * dim, inv = inverseRMS[r]
            for i in 0..<dim { yr[i] = w[i] * (xr[i] * inv) }
        }
    }
}
