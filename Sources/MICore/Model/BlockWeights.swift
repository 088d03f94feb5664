import CSupport

/// The linear weights of a model in a ggml block format (Q4_1 or Q8_0), used to decode a few
/// sequences at a time: there each weight is read once per step, so reading 5 or 8.5 bits instead
/// of 32 is what sets the speed. The values are exactly those of the f32 weights (they were
/// dequantised from these very blocks); only the order of the sums differs.
public final class BlockWeights: @unchecked Sendable {
    public struct Matrix: @unchecked Sendable {
        public let type: GGMLType
        let blocks: UnsafeRawPointer
        let rows: Int
        let columns: Int
    }

    /// By offset of the f32 tensor in `LlamaParameters`.
    var matrices: [Int: Matrix] = [:]
    /// Row-reordered copies (q and k projections), kept alive here.
    private var owned: [UnsafeMutableRawPointer] = []
    /// Keeps the memory map alive.
    let gguf: GGUFFile

    static let supported: Set<GGMLType> = [.q4_1, .q8_0]

    /// Collects the tensors stored as Q4_1 or Q8_0; others use the f32 path.
    init(gguf: GGUFFile, parameters P: LlamaParameters) {
        self.gguf = gguf
        let c = P.config
        for e in P.entries where e.shape.count == 2 {
            guard let name = LlamaParameters.ggufName(e.name), let t = gguf.tensor(name), Self.supported.contains(t.type) else { continue }
            let rows = e.shape[0], columns = e.shape[1]
            var source = gguf.data(of: t)
            let heads = e.name.hasSuffix("q_proj.weight") ? c.numAttentionHeads : e.name.hasSuffix("k_proj.weight") ? c.numKeyValueHeads : 0
            if heads > 0 {
                // Same row order as the f32 weights (see LlamaParameters.unpermuteRoPERows).
                let rowBytes = columns / t.type.blockElements * t.type.blockBytes
                let copy = UnsafeMutableRawPointer.allocate(byteCount: rows * rowBytes, alignment: 64)
                let hd = c.headDim, half = hd / 2
                for h in 0..<heads {
                    for i in 0..<half {
                        for j in 0..<2 {
                            let src = (h * hd + 2 * i + j) * rowBytes, dst = (h * hd + j * half + i) * rowBytes
                            (copy + dst).copyMemory(from: source + src, byteCount: rowBytes)
                        }
                    }
                }
                owned.append(copy)
                source = UnsafeRawPointer(copy)
            }
            matrices[e.offset] = Matrix(type: t.type, blocks: source, rows: rows, columns: columns)
        }
    }

    deinit { for p in owned { p.deallocate() } }

    public var count: Int { matrices.count }

    /// y[m, rows] (+)= x[m, columns] · Wᵀ with row strides ldx and ldy, split over the cores by rows.
    static func multiply(_ w: Matrix, _ x: UnsafePointer<Float>, ldx: Int, _ y: UnsafeMutablePointer<Float>, ldy: Int, m: Int, accumulate: Bool) {
        let xs = UncheckedBox(x), ys = UncheckedBox(y)
        Parallel.chunks(w.rows, minimumPerChunk: 64) { j0, j1 in
            switch w.type {
            case .q4_1: mi_matmul_q4_1(xs.value, ldx, w.blocks, ys.value, ldy, m, w.columns, j0, j1, accumulate ? 1 : 0)
            default: mi_matmul_q8_0(xs.value, ldx, w.blocks, ys.value, ldy, m, w.columns, j0, j1, accumulate ? 1 : 0)
            }
        }
    }
}
