import COpenBLAS
import CSupport
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Makes OpenBLAS use the best sgemm kernel this CPU supports.
///
/// Debian's OpenBLAS 0.3.21 mis-detects AVX-512 CPUs it does not know as "Prescott" (about 5x
/// slower sgemm). The kernel is chosen when the library loads, before any Swift code runs, so
/// the only reliable fix is to re-execute the program once with OPENBLAS_CORETYPE set.
/// A value the user set is always respected.
public enum BLASRuntime {
    /// Marks a process that was re-executed by us, so we never loop.
    static let reexecMarker = "MI_OPENBLAS_REEXEC"

    /// How the kernel of this process was chosen.
    public enum Origin: String, Sendable {
        case user // OPENBLAS_CORETYPE was set by the user
        case reexec // we re-executed with OPENBLAS_CORETYPE set
        case detected // OpenBLAS's own choice was already the best
        case fallback // re-exec failed or was refused; running on OpenBLAS's choice
    }

    /// The kernel OpenBLAS uses now, e.g. "SkylakeX", "Haswell", "Prescott".
    public static var coreName: String {
        guard let p = openblas_get_corename() else { return "unknown" }
        return String(cString: p)
    }

    /// The fastest sgemm kernel family the CPU can run, as OPENBLAS_CORETYPE spells it.
    public static var bestCoreForCPU: String? {
        if mi_cpu_has_avx512_skylakex() != 0 { return "SkylakeX" }
        if mi_cpu_has_avx2_fma() != 0 { return "Haswell" }
        return nil
    }

    /// Kernels at least as good as each target for sgemm, so a CPU OpenBLAS recognises
    /// (e.g. Cooperlake, Zen) is left alone.
    static let acceptable: [String: Set<String>] = [
        "skylakex": ["skylakex", "cooperlake", "sapphirerapids"],
        "haswell": ["haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"],
    ]

    public private(set) nonisolated(unsafe) static var origin: Origin = .detected

    /// When OPENBLAS_CORETYPE is set to a kernel family weaker than this CPU runs (as some
    /// environments set it), a one-line warning saying what to unset; nil otherwise. The setting
    /// is still respected: this only says what it costs.
    public static func weakerCoreWarning() -> String? {
        guard let env = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }), let best = bestCoreForCPU,
            acceptable[best.lowercased()]?.contains(env.lowercased()) != true
        else { return nil }
        return "OPENBLAS_CORETYPE=\(env) is set, but this CPU runs OpenBLAS's \(best) kernels (sgemm up to about 2× faster); "
            + "unset it (env -u OPENBLAS_CORETYPE …) to use them"
    }

    /// Call first thing in `main`, before reading any input. May not return (re-exec).
    public static func selectKernel() {
        let env = getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
        let ours = getenv(reexecMarker) != nil
        if let env, !ours {
            origin = .user
            Log.debug("openblas core \(coreName) (OPENBLAS_CORETYPE=\(env) set by the user)")
            return
        }
        if ours {
            // Hide the marker from our own child processes.
            unsetenv(reexecMarker)
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv("MI_OPENBLAS_SIMULATE_MISDETECT")
            let best = bestCoreForCPU ?? ""
            origin = acceptable[best.lowercased()]?.contains(coreName.lowercased()) == true ? .reexec : .fallback
            Log.debug("openblas core \(coreName) (re-executed with OPENBLAS_CORETYPE=\(env ?? "?"))")
            return
        }
        // Test hook: behave as if OpenBLAS had mis-detected the CPU, to exercise the re-exec path
        // on machines where its detection happens to be right.
        let simulate = getenv("MI_OPENBLAS_SIMULATE_MISDETECT") != nil
        guard let best = bestCoreForCPU, simulate || acceptable[best.lowercased()]?.contains(coreName.lowercased()) != true else {
            origin = .detected
            Log.debug("openblas core \(coreName) (detected by OpenBLAS)")
            return
        }
        Log.debug("openblas chose \(coreName) on a CPU that runs \(best); re-executing with OPENBLAS_CORETYPE=\(best)")
        setenv("OPENBLAS_CORETYPE", best, 1)
        setenv(reexecMarker, "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached when exec failed: carry on with the slower kernel.
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(reexecMarker)
        origin = .fallback
        Log.warning("could not re-execute to select the \(best) BLAS kernel; running on \(coreName)")
    }
}
