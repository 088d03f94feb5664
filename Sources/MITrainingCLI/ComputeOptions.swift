import ArgumentParser
import Foundation
import MICore
import MIStream

/// `--compute`: the precision of the products with the model's weights, for every tool that
/// runs a model. The default is `MI_COMPUTE`, else the fastest this CPU runs within tolerance:
/// bf16 where bf16 products are faster (AMX, or AVX512-BF16 on AMD), f32 elsewhere.
public struct ComputeOptions: ParsableArguments {
    @Option(
        help:
            "f32, or bf16 (operands rounded to bf16, f32 sums). Default: MI_COMPUTE, else bf16 where it is faster on this CPU (AMX, or AVX512-BF16 on AMD)."
    )
    public var compute: String?

    public init() {}

    public func validate() throws {
        if let compute, ComputePrecision(rawValue: compute) == nil { throw ValidationError("--compute must be f32 or bf16") }
        if compute == nil, let env = ProcessInfo.processInfo.environment["MI_COMPUTE"], ComputePrecision(rawValue: env) == nil {
            throw ValidationError("MI_COMPUTE must be f32 or bf16 (it is \"\(env)\")")
        }
    }

    /// The precision chosen by the flag, the environment or the CPU.
    public var resolved: ComputePrecision {
        if let compute, let c = ComputePrecision(rawValue: compute) { return c }
        if let env = ProcessInfo.processInfo.environment["MI_COMPUTE"], let c = ComputePrecision(rawValue: env) { return c }
        return .fastest
    }

    /// Makes it the default of every model this process loads.
    public func apply() {
        ComputePrecision.processDefault = resolved
        Log.debug("compute \(resolved.rawValue)\(resolved == .bf16 && !BF16Products.native ? " (portable loop: no AVX512-BF16)" : "")")
    }
}
