import COpenBLAS
import Dispatch

/// Work split over the machine's cores for loops BLAS does not cover: attention heads, and
/// elementwise kernels on large activations.
public enum Parallel {
    public static let workers = max(1, Int(openblas_get_num_threads()))

    /// Runs `body(start, end)` on `workers` contiguous chunks of 0..<count.
    public static func chunks(_ count: Int, minimumPerChunk: Int = 1, _ body: (Int, Int) -> Void) {
        let n = min(workers, max(1, count / max(minimumPerChunk, 1)))
        if n <= 1 {
            body(0, count)
            return
        }
        withoutActuallyEscaping(body) { b in
            let box = UncheckedBox(b)
            DispatchQueue.concurrentPerform(iterations: n) { i in
                box.value(count * i / n, count * (i + 1) / n)
            }
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread, so several threads can each call it
    /// on small products (OpenBLAS's own threads only cost synchronisation there).
    public static func singleThreadedBLAS(_ body: () -> Void) {
        let before = openblas_get_num_threads()
        openblas_set_num_threads(1)
        body()
        openblas_set_num_threads(before)
    }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
