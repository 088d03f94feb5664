/// A heap block of floats with a stable address, for weights, activations and optimizer state.
/// Hot loops take `pointer` views into it; nothing is reallocated while they run.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    /// Bumped by every change made through this type's methods and the optimizer (`changed()`),
    /// so copies derived from the values (the bf16 weights) know when they are stale.
    public private(set) var generation: UInt64 = 0

    /// Marks the values as changed (call after writing through `pointer` once copies may exist).
    public func changed() { generation &+= 1 }

    public init(count: Int, zeroed: Bool = true) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count, zeroed: false)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { pointer.deallocate() }

    public subscript(i: Int) -> Float {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func zero() {
        changed()
        let p = SendablePointer(pointer)
        Parallel.chunks(count, minimumPerChunk: 1 << 20) { from, to in (p.p + from).update(repeating: 0, count: to - from) }
    }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count)
        changed()
        pointer.update(from: other.pointer, count: count)
    }
}

/// Sendable wrapper for raw pointers captured by parallel loops.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { self.p = p }
}
