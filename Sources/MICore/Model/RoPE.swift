#if canImport(Glibc)
    import Glibc
#endif

/// Rotary position embedding in Hugging Face's "rotate half" layout: within a head, element i
/// pairs with element i + headDim/2 and both turn by position · theta^(-2i/headDim).
struct RoPE {
    let headDim: Int
    let half: Int
    /// cos and sin for each position, [positions, half].
    private(set) var cos: [Float] = []
    private(set) var sin: [Float] = []
    let inverseFrequency: [Float]

    init(headDim: Int, theta: Double, scaling: LlamaConfig.RopeScaling? = nil) {
        self.headDim = headDim
        half = headDim / 2
        // As transformers computes it: in float32 from an integer range.
        var inv = (0..<(headDim / 2)).map { i in 1 / Float(Glibc.pow(theta, Double(Float(2 * i) / Float(headDim)))) }
        switch scaling {
        case nil: break
        case let .linear(factor):
            inv = inv.map { $0 / Float(factor) }
        case let .llama3(factor, low, high, original):
            // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
            let lowWavelength = Double(original) / low, highWavelength = Double(original) / high
            inv = inv.map { f in
                let wavelength = 2 * Double.pi / Double(f)
                if wavelength < highWavelength { return f }
                if wavelength > lowWavelength { return f / Float(factor) }
                let smooth = Float((Double(original) / wavelength - low) / (high - low))
                return (1 - smooth) * f / Float(factor) + smooth * f
            }
        }
        inverseFrequency = inv
    }

    /// Makes the tables cover positions 0..<n.
    mutating func reserve(_ n: Int) {
        let have = cos.count / half
        guard n > have else { return }
        let target = max(n, have * 2, 64)
        cos.reserveCapacity(target * half)
        sin.reserveCapacity(target * half)
        for p in have..<target {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequency[i]
                cos.append(Float(Glibc.cos(Double(angle))))
                sin.append(Float(Glibc.sin(Double(angle))))
            }
        }
    }

    /// Rotates `heads` heads of one token at `position` in place; x: [heads, headDim] with row stride `stride`.
    func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, stride: Int, position: Int, inverse: Bool = false) {
        cos.withUnsafeBufferPointer { c in
            sin.withUnsafeBufferPointer { s in
                let cp = c.baseAddress! + position * half
                let sp = s.baseAddress! + position * half
                let sign: Float = inverse ? -1 : 1
                for h in 0..<heads {
                    let v = x + h * stride
                    for i in 0..<half {
                        let a = v[i], b = v[i + half]
                        let co = cp[i], si = sign * sp[i]
                        v[i] = a * co - b * si
                        v[i + half] = b * co + a * si
                    }
                }
            }
        }
    }
}
