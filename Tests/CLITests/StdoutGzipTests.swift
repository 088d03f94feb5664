import Foundation
import Testing

/// gzip on stdout: `--gzip`, or stdout redirected to a file named *.gz; a plain file under a .gz
/// name is refused with a message that says how it was probably made and what to do.
@Suite struct StdoutGzipTests {
    let records = (0..<5).map { #"{"id":"r\#($0)","instruction":"Describe the colour number \#($0) in detail."}"# }.joined(separator: "\n") + "\n"

    @Test func stdoutIsCompressedWhenAskedOrNamedGz() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let flag = try run("mi-dedupe", [input, "--threshold", "0.99", "--gzip"])
        #expect(flag.status == 0, "\(flag.stderr)")
        #expect(Array(flag.stdout.prefix(2)) == [0x1f, 0x8b])
        // `mi-dedupe … > kept.jsonl.gz`
        FileManager.default.createFile(atPath: dir.path("kept.jsonl.gz"), contents: nil)
        let handle = try #require(FileHandle(forWritingAtPath: dir.path("kept.jsonl.gz")))
        let redirected = try run("mi-dedupe", [input, "--threshold", "0.99"], stdoutTo: handle)
        try handle.close()
        #expect(redirected.status == 0, "\(redirected.stderr)")
        #expect(Array(dir.read("kept.jsonl.gz").prefix(2)) == [0x1f, 0x8b])
        let back = try run("mi-validate", ["--schema", "instruction", dir.path("kept.jsonl.gz")])
        #expect(!back.stderr.contains("named .gz"), "the next stage reads it: \(back.stderr)")
        // Plain stdout to a pipe stays plain.
        let plain = try run("mi-dedupe", [input, "--threshold", "0.99"])
        #expect(plain.stdoutText.split(separator: "\n").count == 5)
    }

    @Test func plainTextUnderAGzNameIsRefusedWithAFix() throws {
        let dir = TempDir()
        let fake = dir.write("made.jsonl.gz", records)
        let r = try run("mi-dedupe", [fake])
        #expect(r.status == 65)
        #expect(r.stderr.contains("made.jsonl.gz: named .gz but not gzip data: it holds plain JSON lines"))
        #expect(r.stderr.contains("gzip -c < \(fake) > fixed.jsonl.gz"))
    }
}
