// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "montessori-swift",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "MIStream", targets: ["MIStream"]),
        .library(name: "MICore", targets: ["MICore"]),
        .executable(name: "mi-validate", targets: ["mi-validate"]),
        .executable(name: "mi-model", targets: ["mi-model"]),
        .executable(name: "mi-sft", targets: ["mi-sft"]),
        .executable(name: "mi-dpo", targets: ["mi-dpo"]),
        .executable(name: "mi-dedupe", targets: ["mi-dedupe"]),
        .executable(name: "mi-respond", targets: ["mi-respond"]),
        .executable(name: "mi-generate", targets: ["mi-generate"]),
        .executable(name: "mi-probe", targets: ["mi-probe"]),
        .executable(name: "mi-pair", targets: ["mi-pair"]),
        .executable(name: "mi-merge", targets: ["mi-merge"]),
        .executable(name: "mi-eval", targets: ["mi-eval"]),
        .executable(name: "mi-run", targets: ["mi-run"]),
        .executable(name: "mi-report", targets: ["mi-report"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // C libraries from Debian: zlib1g-dev and libopenblas-dev.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),
        // Small C helpers Swift cannot express: cpuid feature checks.
        .target(name: "CSupport", path: "Sources/CSupport"),

        // The JSON Schemas in schemas/ compiled into the binary, so a copied executable still validates.
        .target(
            name: "MISchemas", path: "Sources/MISchemas",
            resources: [.embedInCode("schemas")]),

        // Stream layer: gzip, JSONL records, schemas. Knows nothing of models.
        .target(name: "MIStream", dependencies: ["CZlib", "CSupport", "MISchemas"]),
        // Model core: BLAS runtime, checkpoint formats, tokenizer, transformer. Knows nothing of stages.
        .target(name: "MICore", dependencies: ["COpenBLAS", "CSupport", "MIStream"]),
        // Stages: the work of each tool, on the model core and the stream layer.
        .target(name: "MIStages", dependencies: ["MICore", "MIStream"]),
        // The whole loop over a run directory: config, fingerprinted steps, the stage tools as processes.
        .target(
            name: "MIRun",
            dependencies: [
                "MICore", "MIStages", "MIStream",
                .product(name: "Yams", package: "Yams"),
            ]),
        // Shared command-line plumbing: exit codes, logging flags, signal handling.
        .target(
            name: "MICLI",
            dependencies: [
                "MIStream",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Flags shared by the training commands.
        .target(
            name: "MITrainingCLI",
            dependencies: [
                "MICore", "MIStages",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        .executableTarget(name: "mi-validate", dependencies: ["MICLI", "MIStream"]),
        .executableTarget(name: "mi-model", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStream"]),
        .executableTarget(name: "mi-sft", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-eval", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-run", dependencies: ["MICLI", "MICore", "MIRun", "MIStream"]),
        .executableTarget(name: "mi-report", dependencies: ["MICLI", "MIRun", "MIStream"]),
        .executableTarget(name: "mi-pair", dependencies: ["MICLI", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-merge", dependencies: ["MICLI", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-probe", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-generate", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-respond", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-dedupe", dependencies: ["MICLI", "MIStages", "MIStream"]),
        .executableTarget(name: "mi-dpo", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStages", "MIStream"]),
        // Benchmarks of the model core (not tests): bench/model.sh runs it beside the PyTorch peer.
        .executableTarget(name: "mi-bench", dependencies: ["MICLI", "MITrainingCLI", "MICore", "MIStream", "COpenBLAS"]),

        .testTarget(name: "MIStreamTests", dependencies: ["MIStream", "MISchemas"]),
        .testTarget(name: "MICoreTests", dependencies: ["MICore", "CSupport", "MIStages"]),
        .testTarget(name: "MIStagesTests", dependencies: ["MIStages", "MIStream"]),
        .testTarget(name: "MIRunTests", dependencies: ["MIRun", "MIStream"]),
        // Runs the built executables as a user would: exit codes, pipes, signals.
        .testTarget(
            name: "CLITests",
            dependencies: [
                "MIStream", "mi-validate", "mi-model", "mi-sft", "mi-dpo", "mi-dedupe", "mi-respond", "mi-generate", "mi-probe", "mi-pair", "mi-eval",
                "mi-merge",
            ]),
    ]
)
