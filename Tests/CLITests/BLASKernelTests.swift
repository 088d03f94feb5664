import Foundation
import Testing

/// Every executable that uses BLAS must pick the best kernel by itself, re-executing once with
/// OPENBLAS_CORETYPE set when OpenBLAS chose a weaker one, and must respect the user's own value.
@Suite struct BLASKernelTests {
    func runtimeInfo(_ env: [String: String], removing: [String]) throws -> (json: [String: String?], stderr: String) {
        let r = try run("mi-model", ["runtime"], environment: env.merging(["MI_LOG_LEVEL": "debug"]) { a, _ in a }, removing: removing)
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout)) as? [String: Any] ?? [:]
        return (object.mapValues { $0 as? String }, r.stderr)
    }

    @Test func reexecSelectsTheBestKernel() throws {
        // The hook makes the program treat OpenBLAS's choice as a mis-detection, as happens with
        // Debian's OpenBLAS 0.3.21 on AVX-512 CPUs it does not know ("Prescott").
        let (info, stderr) = try runtimeInfo(["MI_OPENBLAS_SIMULATE_MISDETECT": "1"], removing: ["OPENBLAS_CORETYPE"])
        guard let best = info["cpu_best_core"] ?? nil else { return } // CPU without AVX2: nothing to select
        #expect(info["origin"] == "reexec")
        #expect(info["openblas_core"]??.lowercased() == best.lowercased())
        #expect(stderr.contains("re-executing with OPENBLAS_CORETYPE=\(best)"))
        // exactly one re-exec: the second process reports and goes on
        #expect(stderr.components(separatedBy: "re-executing").count == 2)
    }

    @Test func userSettingIsRespected() throws {
        let (info, stderr) = try runtimeInfo(["OPENBLAS_CORETYPE": "Prescott"], removing: [])
        #expect(info["origin"] == "user")
        #expect(info["openblas_core"] == "Prescott")
        #expect(stderr.contains("set by the user"))
    }

    @Test func withoutMisdetectionNothingIsReexecuted() throws {
        let (info, stderr) = try runtimeInfo([:], removing: ["OPENBLAS_CORETYPE"])
        #expect(info["origin"] == "detected" || info["origin"] == "reexec")
        #expect(stderr.contains("openblas core"))
    }
}
