import CSupport

/// One linear layer of the model, y = x·Wᵀ (+ b), W: [outputs, inputs] as Hugging Face stores it.
/// Every matrix product of the model with a weight goes through this type, so the blocks never see
/// how a weight is stored or which kernel multiplies it:
/// - the f32 weight in the parameter buffer (trained in place by AdamW; BLAS products), always;
/// - the file's quantised blocks (Q4_1, Q8_0), when the model was loaded for decoding: used for
///   steps of at most `blockRowsLimit` rows, where reading 5 or 8.5 bits per weight instead of 32
///   sets the speed. A fused layer (q, k and v as one [qDim + 2·kvDim, d] weight) has one block
///   matrix per part, stacked by rows.
/// - with bf16 compute (`bf16` set), the same weight packed in bf16 for products with f32 sums;
///   the block kernels then serve only steps of at most `blockRowsLimitBF16` rows.
/// A new storage format is a new case of `Storage` and a branch in `forward`; a bias is `bias`.
public struct Linear: @unchecked Sendable {
    public enum Storage {
        case f32
        case blocks([BlockWeights.Matrix])
    }

    /// Offset of W in the parameter buffer (and of dW in a gradient buffer of the same layout).
    public let weight: Int
    /// Offset of b, when the layer has a bias.
    public let bias: Int?
    public let outputs: Int
    public let inputs: Int
    public var storage: Storage = .f32
    let parameters: LlamaParameters
    /// The bf16 copies this layer multiplies with, when the model computes in bf16.
    var bf16: BF16Weights?

    /// Above this many rows in a step, f32 products on BLAS beat the block kernels.
    public static let blockRowsLimit = 16
    /// The same against the bf16 products.
    public static let blockRowsLimitBF16 = 4

    public init(parameters: LlamaParameters, weight: Int, outputs: Int, inputs: Int, bias: Int? = nil) {
        self.parameters = parameters
        self.weight = weight
        self.outputs = outputs
        self.inputs = inputs
        self.bias = bias
    }

    /// The layer with its file blocks taken from `blocks` (one matrix per part, by the parts'
    /// f32 offsets), or unchanged when any part has none.
    func using(_ blocks: BlockWeights?, parts: [Int]) -> Linear {
        guard let blocks else { return self }
        let matrices = parts.compactMap { blocks.matrices[$0] }
        guard matrices.count == parts.count else { return self }
        var l = self
        l.storage = .blocks(matrices)
        return l
    }

    /// y[m, outputs] (+)= x[m, inputs] · Wᵀ (+ b), rows ldx and ldy apart.
    public func forward(
        _ x: UnsafePointer<Float>, ldx: Int? = nil, _ y: UnsafeMutablePointer<Float>, ldy: Int? = nil,
        rows m: Int, accumulate: Bool = false
    ) {
        let ldx = ldx ?? inputs, ldy = ldy ?? outputs
        if case let .blocks(parts) = storage, m <= (bf16 == nil ? Self.blockRowsLimit : Self.blockRowsLimitBF16) {
            var row = 0
            for part in parts {
                BlockWeights.multiply(part, x, ldx: ldx, y + row, ldy: ldy, m: m, accumulate: accumulate)
                row += part.rows
            }
        } else if let bf16 {
            let w = bf16.forward(weight: weight, outputs: outputs, inputs: inputs)
            BF16Products.multiply(x, lda: ldx, rows: m, w, y, ldc: ldy, accumulate: accumulate)
        } else {
            BLAS.matmulT(x, parameters.pointer(weight), y, m: m, n: outputs, k: inputs, lda: ldx, ldc: ldy, accumulate: accumulate)
        }
        if let bias {
            let b = parameters.pointer(bias)
            for r in 0..<m {
                let yr = y + r * ldy
                for j in 0..<outputs { yr[j] += b[j] }
            }
        }
    }

    /// Backward of `forward` (y = x·Wᵀ + b), from dy[m, outputs]:
    /// dW += dyᵀ·x and db += Σ_rows dy into `gradients` (laid out like the parameters), and
    /// dx[m, inputs] (+)= dy·W when `dx` is given. On the f32 weight, or its bf16 copy with bf16 compute.
    public func backward(
        _ dy: UnsafePointer<Float>, ldy: Int? = nil, x: UnsafePointer<Float>, ldx: Int? = nil,
        dx: UnsafeMutablePointer<Float>?, lddx: Int? = nil, rows m: Int, accumulateDx: Bool = false,
        gradients: UnsafeMutablePointer<Float>
    ) {
        let ldy = ldy ?? outputs, ldx = ldx ?? inputs
        if bf16 != nil {
            // dW += dyᵀ·x: x packed as B [m, inputs], dy converted transposed.
            let xb = BF16Products.Packed(k: m, n: inputs)
            xb.pack(x, ld: ldx, byRows: false)
            BF16Products.multiply(dy, lda: ldy, transposedA: true, rows: outputs, xb, gradients + weight, ldc: inputs, accumulate: true)
        } else {
            BLAS.matmulTA(dy, x, gradients + weight, m: outputs, n: inputs, k: m, lda: ldy, ldb: ldx, ldc: inputs, accumulate: true)
        }
        if let bias {
            let db = gradients + bias
            for r in 0..<m {
                let dyr = dy + r * ldy
                for j in 0..<outputs { db[j] += dyr[j] }
            }
        }
        if let dx, let bf16 {
            let w = bf16.backward(weight: weight, outputs: outputs, inputs: inputs)
            BF16Products.multiply(dy, lda: ldy, rows: m, w, dx, ldc: lddx ?? inputs, accumulate: accumulateDx)
        } else if let dx {
            BLAS.matmul(
                dy, parameters.pointer(weight), dx, m: m, n: inputs, k: outputs, lda: ldy, ldc: lddx ?? inputs,
                accumulate: accumulateDx)
        }
    }
}
