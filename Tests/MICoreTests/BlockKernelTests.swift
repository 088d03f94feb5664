import CSupport
import MICore
import Testing

/// The block kernels against dequantise-then-multiply in Float64, for every tile shape
/// (m = 1, 2, 3, 4, 5, 8, 13, 16), partial tiles of weight rows, accumulation, on both the AVX-512
/// and the portable code.
@Suite(.serialized) struct BlockKernelTests {
    nonisolated(unsafe) static let kernels:
        [(GGMLType, (UnsafePointer<Float>, Int, UnsafeRawPointer, UnsafeMutablePointer<Float>, Int, Int, Int, Int, Int, Int32) -> Void)] = [
            (.q4_1, { mi_matmul_q4_1($0, $1, $2, $3, $4, $5, $6, $7, $8, $9) }),
            (.q8_0, { mi_matmul_q8_0($0, $1, $2, $3, $4, $5, $6, $7, $8, $9) }),
        ]

    func randomBlocks(_ type: GGMLType, rows: Int, columns: Int, rng: inout SplitMix64) -> [UInt8] {
        var bytes = (0..<(rows * columns / 32 * type.blockBytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        for b in 0..<(bytes.count / type.blockBytes) {
            let scales = type == .q4_1 ? [0, 2] : [0]
            for s in scales {
                let h = Float16(Float(rng.next() % 1000) / 20000 + 0.001) * (s == 2 ? -1 : 1)
                bytes[b * type.blockBytes + s] = UInt8(h.bitPattern & 0xFF)
                bytes[b * type.blockBytes + s + 1] = UInt8(h.bitPattern >> 8)
            }
        }
        return bytes
    }

    @Test(arguments: [false, true])
    func matchesDequantisedProducts(portable: Bool) {
        mi_use_portable_kernels(portable ? 1 : 0)
        defer { mi_use_portable_kernels(0) }
        var rng = SplitMix64(seed: 3)
        let rows = 13, columns = 96
        for (type, kernel) in Self.kernels {
            let blocks = randomBlocks(type, rows: rows, columns: columns, rng: &rng)
            var w = [Float](repeating: 0, count: rows * columns)
            blocks.withUnsafeBytes { src in
                w.withUnsafeMutableBufferPointer { Dequantize.run(type, src.baseAddress!, $0.baseAddress!, count: rows * columns) }
            }
            for m in [1, 2, 3, 4, 5, 8, 13, 16] {
                let x = (0..<(m * columns)).map { _ in Float(Int(rng.next() % 2001) - 1000) / 1000 }
                let start = (0..<(m * rows)).map { Float($0) }
                for accumulate in [false, true] {
                    var y = start
                    blocks.withUnsafeBytes { b in
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { yp in
                                // two calls over row ranges, as the parallel split does
                                kernel(xp.baseAddress!, columns, b.baseAddress!, yp.baseAddress!, rows, m, columns, 0, 5, accumulate ? 1 : 0)
                                kernel(xp.baseAddress!, columns, b.baseAddress!, yp.baseAddress!, rows, m, columns, 5, rows, accumulate ? 1 : 0)
                            }
                        }
                    }
                    for i in 0..<m {
                        for j in 0..<rows {
                            var expected = accumulate ? Double(start[i * rows + j]) : 0
                            for t in 0..<columns { expected += Double(x[i * columns + t]) * Double(w[j * columns + t]) }
                            #expect(abs(Double(y[i * rows + j]) - expected) < 1e-4 * max(1, abs(expected)), "\(type.name) m=\(m) i=\(i) j=\(j)")
                        }
                    }
                }
            }
        }
    }
}
