/// Keys (after RoPE) and values of every layer for a fixed number of sequence slots.
/// Layout per layer: [slots, capacity, kvDim].
public final class KVCache: @unchecked Sendable {
    public let slots: Int
    public let capacity: Int
    let kvDim: Int
    let layers: Int
    let keys: FloatBuffer
    let values: FloatBuffer
    /// Tokens stored per slot.
    public internal(set) var lengths: [Int]

    public init(config: LlamaConfig, slots: Int, capacity: Int) {
        self.slots = slots
        self.capacity = capacity
        kvDim = config.numKeyValueHeads * config.headDim
        layers = config.numHiddenLayers
        keys = FloatBuffer(count: layers * slots * capacity * kvDim, zeroed: false)
        values = FloatBuffer(count: layers * slots * capacity * kvDim, zeroed: false)
        lengths = [Int](repeating: 0, count: slots)
    }

    @inline(__always) func keyRow(layer: Int, slot: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys.pointer + ((layer * slots + slot) * capacity + position) * kvDim
    }

    @inline(__always) func valueRow(layer: Int, slot: Int, position: Int) -> UnsafeMutablePointer<Float> {
        values.pointer + ((layer * slots + slot) * capacity + position) * kvDim
    }

    public func reset(slot: Int) { lengths[slot] = 0 }

    /// Makes the first `count` positions of slot `to` those of slot `from` (every layer's keys and
    /// values), and its length `count`: a sequence that shares a prefix skips computing it.
    public func sharePrefix(from: Int, to: Int, count: Int) {
        precondition(count <= capacity, "prefix longer than the cache")
        if from != to {
            for layer in 0..<layers {
                keyRow(layer: layer, slot: to, position: 0).update(from: keyRow(layer: layer, slot: from, position: 0), count: count * kvDim)
                valueRow(layer: layer, slot: to, position: 0).update(from: valueRow(layer: layer, slot: from, position: 0), count: count * kvDim)
            }
        }
        lengths[to] = count
    }
}
