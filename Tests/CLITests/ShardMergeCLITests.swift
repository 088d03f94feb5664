import Foundation
import Testing

/// Sharded stages and mi-merge: shards of mi-respond and mi-probe, merged, equal the unsharded
/// run's file byte for byte; a missing record, a duplicated or foreign id and shards made with
/// other settings are refused with one line and exit 65.
@Suite struct ShardMergeCLITests {
    let records =
        (0..<9).map { #"{"id":"r\#($0)","prompt_id":"p\#($0 / 3)","instruction":"Say something about \#($0).","extra":[\#($0)]}"# }
        .joined(separator: "\n") + "\n"

    func lines(_ dir: TempDir, _ name: String) -> [String] {
        String(decoding: dir.read(name), as: UTF8.self).split(separator: "\n").map(String.init)
    }

    @Test func respondShardsMergeToTheWholeRun() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let flags = ["--teacher", SFTCLITests.tiny, "--max-tokens", "4", "--batch-size", "2", input]
        let whole = try run("mi-respond", flags + ["-o", dir.path("whole.jsonl")])
        #expect(whole.status == 0, "\(whole.stderr)")
        var sizes: [Int] = []
        for k in 0..<3 {
            let s = try run("mi-respond", flags + ["--shard", "\(k)/3", "-o", dir.path("s\(k).jsonl")])
            #expect(s.status == 0, "\(s.stderr)")
            #expect(try run("mi-validate", ["--schema", "response", dir.path("s\(k).jsonl")]).status == 0)
            sizes.append(lines(dir, "s\(k).jsonl").count)
        }
        #expect(sizes.reduce(0, +) == 9 && sizes.filter { $0 > 0 }.count >= 2, "\(sizes)")
        let shards = (0..<3).map { dir.path("s\($0).jsonl") }
        let merged = try run("mi-merge", ["--input", input, "-o", dir.path("merged.jsonl")] + shards)
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(dir.read("merged.jsonl") == dir.read("whole.jsonl"))

        func refused(_ shardFiles: [String], _ fragment: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let r = try run("mi-merge", ["--input", input, "-o", dir.path("bad.jsonl")] + shardFiles)
            #expect(r.status == 65, "\(r.stderr)", sourceLocation: sourceLocation)
            let errors = r.stderr.split(separator: "\n").filter { $0.contains("error") }
            #expect(errors.count == 1 && errors[0].contains(fragment), "\(r.stderr)", sourceLocation: sourceLocation)
            #expect(!dir.exists("bad.jsonl"), "nothing is written", sourceLocation: sourceLocation)
        }
        let big = sizes.firstIndex(of: sizes.max()!)!
        let kept = lines(dir, "s\(big).jsonl")
        var missing = shards
        missing[big] = dir.write("missing.jsonl", kept.dropFirst().joined(separator: "\n") + "\n")
        try refused(missing, "expected record")
        var twice = shards
        twice[big] = dir.write("twice.jsonl", ([kept[0]] + kept).joined(separator: "\n") + "\n")
        try refused(twice, "appears twice")
        var foreign = shards
        foreign[big] = dir.write(
            "foreign.jsonl", (kept + [kept[0].replacingOccurrences(of: "\"id\":\"", with: "\"id\":\"zz")]).joined(separator: "\n") + "\n")
        try refused(foreign, "not in the input")
        // One shard answered at another temperature.
        let other = try run("mi-respond", flags + ["--shard", "\(big)/3", "--temperature", "0.3", "-o", dir.path("other.jsonl")])
        #expect(other.status == 0, "\(other.stderr)")
        var settings = shards
        settings[big] = dir.path("other.jsonl")
        try refused(settings, "shards made with different settings")
        // Two shard files where three were made: ids hash elsewhere.
        try refused(Array(shards.prefix(2)), "expected record")
    }

    @Test func probeShardsMergeToTheWholeRun() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records.replacingOccurrences(of: "\"extra\"", with: "\"response\":\"Fine.\",\"extra\""))
        let refs = dir.write("refs.jsonl", #"{"instruction":"Name a colour.","response":"Blue."}"# + "\n")
        let flags = ["--student", SFTCLITests.tiny, "--reference", refs, "--lr", "1e-3", input]
        let whole = try run("mi-probe", flags + ["-o", dir.path("whole.jsonl")])
        #expect(whole.status == 0, "\(whole.stderr)")
        for k in 0..<2 {
            let s = try run("mi-probe", flags + ["--shard", "\(k)/2", "-o", dir.path("s\(k).jsonl")])
            #expect(s.status == 0, "\(s.stderr)")
        }
        let merged = try run("mi-merge", ["--input", input, dir.path("s0.jsonl"), dir.path("s1.jsonl")])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stdout == dir.read("whole.jsonl"))
    }
}
