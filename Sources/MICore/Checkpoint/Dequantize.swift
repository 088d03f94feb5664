/// Dequantisation of ggml block formats to f32. Each function reads `count` elements (a whole
/// number of blocks) from `src` and writes them to `dst`. The arithmetic follows ggml's reference
/// C code operation by operation (no fused multiply-add), so results are bit-exact.
public enum Dequantize {
    public static func run(_ type: GGMLType, _ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, count: Int) {
        let blocks = count / type.blockElements
        switch type {
        case .f32: dst.update(from: src.assumingMemoryBound(to: Float.self), count: count)
        case .f16: for i in 0..<count { dst[i] = half(src, 2 * i) }
        case .bf16: for i in 0..<count { dst[i] = Float(bitPattern: UInt32(u16(src, 2 * i)) << 16) }
        case .q4_0: for b in 0..<blocks { q4_0(src + b * 18, dst + b * 32) }
        case .q4_1: for b in 0..<blocks { q4_1(src + b * 20, dst + b * 32) }
        case .q5_0: for b in 0..<blocks { q5_0(src + b * 22, dst + b * 32) }
        case .q5_1: for b in 0..<blocks { q5_1(src + b * 24, dst + b * 32) }
        case .q8_0: for b in 0..<blocks { q8_0(src + b * 34, dst + b * 32) }
        case .q4_K: for b in 0..<blocks { q4_K(src + b * 144, dst + b * 256) }
        case .q5_K: for b in 0..<blocks { q5_K(src + b * 176, dst + b * 256) }
        case .q6_K: for b in 0..<blocks { q6_K(src + b * 210, dst + b * 256) }
        }
    }

    @inline(__always) static func u16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always) static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: u16(p, offset)))
    }

    @inline(__always) static func byte(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
        p.load(fromByteOffset: offset, as: UInt8.self)
    }

    // Q4_0: x = d * (nibble - 8); low nibbles are elements 0..15, high nibbles 16..31.
    static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for j in 0..<16 {
            let q = byte(p, 2 + j)
            y[j] = Float(Int(q & 0xF) - 8) * d
            y[j + 16] = Float(Int(q >> 4) - 8) * d
        }
    }

    // Q4_1: x = d * nibble + m.
    static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        for j in 0..<16 {
            let q = byte(p, 4 + j)
            y[j] = Float(q & 0xF) * d + m
            y[j + 16] = Float(q >> 4) * d + m
        }
    }

    // Q5_0: the fifth bit of element j is bit j of qh; x = d * (q - 16).
    static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(p, 6 + j)
            let h0 = UInt8(((qh >> UInt32(j)) << 4) & 0x10)
            let h1 = UInt8((qh >> UInt32(j + 12)) & 0x10)
            y[j] = Float(Int((q & 0xF) | h0) - 16) * d
            y[j + 16] = Float(Int((q >> 4) | h1) - 16) * d
        }
    }

    // Q5_1: as Q5_0 without the offset, plus a minimum: x = d * q + m.
    static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), m = half(p, 2)
        let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        for j in 0..<16 {
            let q = byte(p, 8 + j)
            let h0 = UInt8(((qh >> UInt32(j)) << 4) & 0x10)
            let h1 = UInt8((qh >> UInt32(j + 12)) & 0x10)
            y[j] = Float((q & 0xF) | h0) * d + m
            y[j + 16] = Float((q >> 4) | h1) * d + m
        }
    }

    // Q8_0: x = d * int8.
    static func q8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0)
        for j in 0..<32 { y[j] = Float(Int8(bitPattern: byte(p, 2 + j))) * d }
    }

    /// The 6-bit scale and minimum of sub-block `j` (0..<8) packed in the 12 scale bytes of K-quants.
    @inline(__always) static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (byte(s, j) & 63, byte(s, j + 4) & 63) }
        let sc = (byte(s, j + 4) & 0xF) | ((byte(s, j - 4) >> 6) << 4)
        let mn = (byte(s, j + 4) >> 4) | ((byte(s, j) >> 6) << 4)
        return (sc, mn)
    }

    // Q4_K: 8 sub-blocks of 32, each x = d*scale * nibble - dmin*min.
    static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), dmin = half(p, 2)
        let scales = p + 4
        var q = p + 16
        var out = y
        for pair in 0..<4 {
            let (sc1, m1) = scaleMin(scales, 2 * pair)
            let (sc2, m2) = scaleMin(scales, 2 * pair + 1)
            let d1 = d * Float(sc1), mm1 = dmin * Float(m1)
            let d2 = d * Float(sc2), mm2 = dmin * Float(m2)
            for l in 0..<32 { out[l] = d1 * Float(byte(q, l) & 0xF) - mm1 }
            for l in 0..<32 { out[32 + l] = d2 * Float(byte(q, l) >> 4) - mm2 }
            q += 32
            out += 64
        }
    }

    // Q5_K: as Q4_K with a fifth bit per element from qh.
    static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 0), dmin = half(p, 2)
        let scales = p + 4
        let qh = p + 16
        var ql = p + 48
        var out = y
        var u1: UInt8 = 1, u2: UInt8 = 2
        for pair in 0..<4 {
            let (sc1, m1) = scaleMin(scales, 2 * pair)
            let (sc2, m2) = scaleMin(scales, 2 * pair + 1)
            let d1 = d * Float(sc1), mm1 = dmin * Float(m1)
            let d2 = d * Float(sc2), mm2 = dmin * Float(m2)
            for l in 0..<32 {
                let h: UInt8 = byte(qh, l) & u1 != 0 ? 16 : 0
                out[l] = d1 * Float((byte(ql, l) & 0xF) + h) - mm1
            }
            for l in 0..<32 {
                let h: UInt8 = byte(qh, l) & u2 != 0 ? 16 : 0
                out[32 + l] = d2 * Float((byte(ql, l) >> 4) + h) - mm2
            }
            ql += 32
            out += 64
            u1 <<= 2
            u2 <<= 2
        }
    }

    // Q6_K: 16 sub-blocks of 16 with int8 scales; 6-bit values centred on 32.
    static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = half(p, 208)
        var ql = p, qh = p + 128, sc = p + 192
        var out = y
        for _ in 0..<2 {
            for l in 0..<32 {
                let i = l / 16
                let h = byte(qh, l)
                let q1 = Int((byte(ql, l) & 0xF) | ((h & 3) << 4)) - 32
                let q2 = Int((byte(ql, l + 32) & 0xF) | (((h >> 2) & 3) << 4)) - 32
                let q3 = Int((byte(ql, l) >> 4) | (((h >> 4) & 3) << 4)) - 32
                let q4 = Int((byte(ql, l + 32) >> 4) | (((h >> 6) & 3) << 4)) - 32
                let s = { (k: Int) in Float(Int8(bitPattern: byte(sc, k))) }
                out[l] = d * s(i) * Float(q1)
                out[l + 32] = d * s(i + 2) * Float(q2)
                out[l + 64] = d * s(i + 4) * Float(q3)
                out[l + 96] = d * s(i + 6) * Float(q4)
            }
            out += 128
            ql += 64
            qh += 32
            sc += 8
        }
    }
}
