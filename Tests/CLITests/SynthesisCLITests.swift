import Foundation
import Testing

/// The synthesis stages on the default model: resume of mi-generate, and the whole
/// generate | dedupe | respond pipeline producing valid records.
@Suite(.enabled(if: SFTCLITests.gguf != nil, "set MI_MODEL (make test does)"))
struct SynthesisCLITests {
    static let seeds = SFTCLITests.fixtures.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data/seeds.jsonl").path

    @Test func generateResumesToTheSameFile() throws {
        let dir = TempDir()
        let flags = ["--teacher", SFTCLITests.gguf!, "--seeds", Self.seeds, "--prompts", "6", "--samples", "2", "--round", "2", "--max-tokens", "48"]
        let full = try run("mi-generate", flags + ["-o", dir.path("full.jsonl.gz")])
        #expect(full.status == 0, "\(full.stderr)")
        let bytes = dir.read("full.jsonl.gz")
        // An interrupted run: its partial output cut inside the last gzip member.
        dir.write("cut.jsonl.gz.partial", Array(bytes[..<(bytes.count * 2 / 3)]))
        let resumed = try run("mi-generate", flags + ["-o", dir.path("cut.jsonl.gz"), "--resume"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(dir.read("cut.jsonl.gz") == bytes)
        #expect(!dir.exists("cut.jsonl.gz.partial"))
    }

    @Test func pipelineWritesValidRecords() throws {
        let dir = TempDir()
        let bin = Executables.directory.path
        let script = """
            set -euo pipefail
            \(bin)/mi-generate --quiet --teacher \(SFTCLITests.gguf!) --seeds \(Self.seeds) --prompts 4 --samples 2 --max-tokens 48 \
              | \(bin)/mi-dedupe --quiet --against \(Self.seeds) \
              | \(bin)/mi-respond --quiet --teacher \(SFTCLITests.gguf!) --max-tokens 32 \
              | \(bin)/mi-validate --schema response --pass - > \(dir.path("out.jsonl"))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let lines = String(decoding: dir.read("out.jsonl"), as: UTF8.self).split(separator: "\n")
        #expect(!lines.isEmpty)
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
            #expect(o["prompt_id"] != nil && o["instruction"] != nil && o["response"] != nil && o["teacher"] != nil)
        }
    }
}
