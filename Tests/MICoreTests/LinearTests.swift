import Testing

@testable import MICore

/// The one linear-layer type every product of the model goes through: forward and backward, with
/// and without a bias, against sums in f64 written out here.
@Suite struct LinearTests {
    /// W [outputs, inputs] at offset 0 of a tiny model's buffer, b after it (any offsets will do).
    static func layer(bias: Bool, outputs: Int = 5, inputs: Int = 7) -> Linear {
        let P = LlamaParameters(config: LlamaConfig.tiny)
        var rng = SplitMix64(seed: 11)
        for i in 0..<(outputs * inputs + outputs) { P.buffer[i] = Float(rng.nextUnit() * 2 - 1) }
        return Linear(parameters: P, weight: 0, outputs: outputs, inputs: inputs, bias: bias ? outputs * inputs : nil)
    }

    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(rng.nextUnit() * 2 - 1) }
    }

    @Test(arguments: [false, true]) func forwardAndBackwardAreTheProductsTheySayTheyAre(bias: Bool) {
        let l = Self.layer(bias: bias), m = 3, O = l.outputs, I = l.inputs
        let P = l.parameters.buffer
        let w = { (o: Int, i: Int) in Double(P[o * I + i]) }
        let b = { (o: Int) in bias ? Double(P[O * I + o]) : 0 }
        let x = Self.values(m * I, seed: 2), dy = Self.values(m * O, seed: 3)
        // Accumulating forward: y starts at 1.
        var y = [Float](repeating: 1, count: m * O)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { l.forward(xp.baseAddress!, $0.baseAddress!, rows: m, accumulate: true) }
        }
        for r in 0..<m {
            for o in 0..<O {
                let expected = 1 + b(o) + (0..<I).reduce(0.0) { $0 + Double(x[r * I + $1]) * w(o, $1) }
                #expect(abs(Double(y[r * O + o]) - expected) < 1e-5)
            }
        }
        let G = FloatBuffer(count: l.parameters.count)
        var dx = [Float](repeating: 0, count: m * I)
        dy.withUnsafeBufferPointer { dyp in
            x.withUnsafeBufferPointer { xp in
                dx.withUnsafeMutableBufferPointer {
                    l.backward(dyp.baseAddress!, x: xp.baseAddress!, dx: $0.baseAddress!, rows: m, gradients: G.pointer)
                }
            }
        }
        for o in 0..<O {
            for i in 0..<I {
                let dW = (0..<m).reduce(0.0) { $0 + Double(dy[$1 * O + o]) * Double(x[$1 * I + i]) }
                #expect(abs(Double(G[o * I + i]) - dW) < 1e-5)
            }
            let db = bias ? (0..<m).reduce(0.0) { $0 + Double(dy[$1 * O + o]) } : 0
            #expect(abs(Double(G[O * I + o]) - db) < 1e-5, "db, or nothing without a bias")
        }
        for r in 0..<m {
            for i in 0..<I {
                let expected = (0..<O).reduce(0.0) { $0 + Double(dy[r * O + $1]) * w($1, i) }
                #expect(abs(Double(dx[r * I + i]) - expected) < 1e-5)
            }
        }
    }
}
