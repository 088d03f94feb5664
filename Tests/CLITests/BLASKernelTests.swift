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

/// The precision of the products: the CPU's fastest by default, MI_COMPUTE, then --compute.
@Suite struct ComputePrecisionCLITests {
    func runtime(_ args: [String], environment: [String: String] = [:]) throws -> (RunResult, [String: Any]) {
        let r = try run("mi-model", ["runtime"] + args, environment: environment, removing: environment.isEmpty ? ["MI_COMPUTE"] : [])
        let o = (try? JSONSerialization.jsonObject(with: Data(r.stdout))) as? [String: Any] ?? [:]
        return (r, o)
    }

    @Test func defaultEnvironmentAndFlagChooseThePrecision() throws {
        let (r, o) = try runtime([])
        #expect(r.status == 0, "\(r.stderr)")
        let native = try #require(o["bf16_native"] as? Bool)
        #expect(o["compute"] as? String == (native ? "bf16" : "f32"))
        #expect(try runtime([], environment: ["MI_COMPUTE": "bf16"]).1["compute"] as? String == "bf16")
        #expect(try runtime(["--compute", "f32"], environment: ["MI_COMPUTE": "bf16"]).1["compute"] as? String == "f32")
        let (bad, _) = try runtime([], environment: ["MI_COMPUTE": "fp16"])
        #expect(bad.status == 64 && bad.stderr.contains("MI_COMPUTE must be f32 or bf16"), "\(bad.stderr)")
        let (badFlag, _) = try runtime(["--compute", "fp8"])
        #expect(badFlag.status == 64 && badFlag.stderr.contains("--compute must be f32 or bf16"), "\(badFlag.stderr)")
    }
}
