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

    /// `--extend`: a run of 3 prompts continued to 6 holds the records of one 6-prompt run (its
    /// last, partial round generated again); an output of other settings is refused by line.
    @Test func generateExtendsAFinishedOutput() throws {
        let dir = TempDir()
        let flags = ["--teacher", SFTCLITests.gguf!, "--seeds", Self.seeds, "--samples", "2", "--round", "2", "--max-tokens", "48"]
        let full = try run("mi-generate", flags + ["--prompts", "6", "-o", dir.path("full.jsonl.gz")])
        #expect(full.status == 0, "\(full.stderr)")
        let part = try run("mi-generate", flags + ["--prompts", "3", "-o", dir.path("part.jsonl.gz")])
        #expect(part.status == 0, "\(part.stderr)")
        let more = try run("mi-generate", flags + ["--prompts", "6", "--extend", dir.path("part.jsonl.gz"), "-o", dir.path("more.jsonl.gz")])
        #expect(more.status == 0, "\(more.stderr)")
        #expect(more.stderr.contains("continuing"))
        let records = { (name: String) in try systemGunzip(dir.path(name)) }
        let whole = try records("full.jsonl.gz")
        #expect(!whole.isEmpty && whole.contains("\"prompt_id\":\"p5\""))
        #expect(try records("more.jsonl.gz") == whole)
        #expect(whole.hasPrefix(try records("part.jsonl.gz")))

        let other = try run(
            "mi-generate", flags + ["--prompts", "6", "--seed", "7", "--extend", dir.path("part.jsonl.gz"), "-o", dir.path("x.jsonl.gz")])
        #expect(other.status == 65)
        #expect(other.stderr.contains(dir.path("part.jsonl.gz") + ":1") && other.stderr.contains("cannot be continued"), "\(other.stderr)")
        #expect(!dir.exists("x.jsonl.gz"))
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
