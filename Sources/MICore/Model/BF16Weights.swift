/// The weights packed for bf16 products (`BF16Products`), made when a layer first needs them and
/// made again when the f32 weights have changed since (the parameter buffer's `generation`: an
/// optimizer step, a restored copy). The f32 weights stay the master copy that AdamW updates.
/// Forward products need each weight once (W as the right side of x·Wᵀ); training's backward
/// needs it a second time the other way round (dy·W).
final class BF16Weights: @unchecked Sendable {
    let parameters: LlamaParameters
    private struct Key: Hashable {
        let offset: Int
        let transposed: Bool
    }
    private var packs: [Key: (generation: UInt64, packed: BF16Products.Packed)] = [:]

    init(parameters: LlamaParameters) { self.parameters = parameters }

    /// W [outputs, inputs] as B [inputs, outputs], for y = x·Wᵀ.
    func forward(weight: Int, outputs: Int, inputs: Int) -> BF16Products.Packed {
        packed(Key(offset: weight, transposed: false), k: inputs, n: outputs, ld: inputs, byRows: true)
    }

    /// W [outputs, inputs] as B [outputs, inputs], for dx = dy·W.
    func backward(weight: Int, outputs: Int, inputs: Int) -> BF16Products.Packed {
        packed(Key(offset: weight, transposed: true), k: outputs, n: inputs, ld: inputs, byRows: false)
    }

    private func packed(_ key: Key, k: Int, n: Int, ld: Int, byRows: Bool) -> BF16Products.Packed {
        let generation = parameters.buffer.generation
        if let p = packs[key], p.generation == generation { return p.packed }
        let p = packs[key]?.packed ?? BF16Products.Packed(k: k, n: n)
        p.pack(parameters.pointer(key.offset), ld: ld, byRows: byRows)
        packs[key] = (generation, p)
        return p
    }
}
