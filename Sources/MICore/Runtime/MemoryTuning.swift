import CSupport

/// The model core allocates activation buffers of a few MB per call. By default glibc serves
/// those with fresh mmaps and returns them on free, so every training step pays page faults and
/// kernel page clearing for memory it just released; keeping freed memory in the heap avoids it.
public enum MemoryTuning {
    public static func retainFreedMemory() { mi_retain_freed_memory() }
}
