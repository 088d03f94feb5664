#if canImport(Glibc)
    import Glibc
#endif

/// The weights packed for bf16 products (`BF16Products`), made when a layer first needs them and
/// made again when the f32 weights have changed since (the parameter buffer's `generation`: an
/// optimizer step, a restored copy). The f32 weights stay the master copy that AdamW updates.
/// Forward products need each weight once (W as the right side of x·Wᵀ); training's backward
/// needs it a second time the other way round (dy·W). Each pack is 2 bytes per parameter; a
/// model large next to this machine's memory keeps only the forward packs and packs backward's
/// into one scratch per shape when it needs them (`keepsBackwardPacks`).
final class BF16Weights: @unchecked Sendable {
    let parameters: LlamaParameters
    private struct Key: Hashable {
        let offset: Int
        let transposed: Bool
    }
    private struct Shape: Hashable {
        let k: Int
        let n: Int
    }
    private var packs: [Key: (generation: UInt64, packed: BF16Products.Packed)] = [:]
    private var scratch: [Shape: BF16Products.Packed] = [:]
    var keepsBackward: Bool

    init(parameters: LlamaParameters) {
        self.parameters = parameters
        keepsBackward = Self.keepsBackwardPacks(parameters: parameters.count, memory: Self.physicalMemory)
    }

    /// Both packs of every weight (4 bytes per parameter) when they take at most an eighth of the
    /// memory: a 135M model keeps them on any machine, a 1.1B model on one with 36 GB or more.
    static func keepsBackwardPacks(parameters: Int, memory: Int) -> Bool { parameters * 4 <= memory / 8 }

    static var physicalMemory: Int { Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// W [outputs, inputs] as B [inputs, outputs], for y = x·Wᵀ.
    func forward(weight: Int, outputs: Int, inputs: Int) -> BF16Products.Packed {
        packed(Key(offset: weight, transposed: false), k: inputs, n: outputs, ld: inputs, byRows: true)
    }

    /// W [outputs, inputs] as B [outputs, inputs], for dx = dy·W.
    func backward(weight: Int, outputs: Int, inputs: Int) -> BF16Products.Packed {
        guard !keepsBackward else {
            return packed(Key(offset: weight, transposed: true), k: outputs, n: inputs, ld: inputs, byRows: false)
        }
        // Used at once by the caller, so the next weight of this shape may overwrite it.
        let shape = Shape(k: outputs, n: inputs)
        let p = scratch[shape] ?? BF16Products.Packed(k: outputs, n: inputs)
        scratch[shape] = p
        p.pack(parameters.pointer(weight), ld: inputs, byRows: false)
        return p
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
