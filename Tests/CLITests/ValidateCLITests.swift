import Foundation
import Testing

/// mi-validate as a user runs it: exit codes, one-line errors naming file and line, pipes, signals.
@Suite struct ValidateCLITests {
    let seed = #"{"instruction":"Name three primary colours.","input":"","output":"Red, yellow and blue."}"#

    func validLines(_ n: Int) -> String {
        (0..<n).map { #"{"id":"s\#($0)","instruction":"Task \#($0)","input":"","output":"ok","extra":{"kept":true}}"# }.joined(separator: "\n") + "\n"
    }

    @Test func acceptsValidRecordsAndPassesThemThrough() throws {
        let dir = TempDir()
        let p = dir.write("seeds.jsonl", validLines(3))
        let r = try run("mi-validate", ["--schema", "seed", "--pass", p])
        #expect(r.status == 0)
        #expect(r.stdoutText == validLines(3))
        #expect(r.stderr.contains("3 records: 3 valid, 0 invalid"))
        // without --pass, stdout stays empty: it carries data only
        let q = try run("mi-validate", ["--schema", "seed", p])
        #expect(q.status == 0)
        #expect(q.stdout.isEmpty)
    }

    @Test func acceptsMultiMemberGzipFromStdin() throws {
        let gz = try systemGzip(validLines(2)) + systemGzip(validLines(3))
        let r = try run("mi-validate", ["--schema", "seed", "--pass", "-"], stdin: gz)
        #expect(r.status == 0)
        #expect(r.stdoutText == validLines(2) + validLines(3))
    }

    @Test(arguments: [
        ("truncated", "truncated gzip data"),
        ("crc", "incorrect data check"),
        ("garbage", "garbage after gzip member 1"),
        ("empty", "empty file"),
        ("notgzip", "not gzip data"),
    ])
    func rejectsBrokenGzip(kind: String, message: String) throws {
        let dir = TempDir()
        let gz = try systemGzip(validLines(50))
        let bytes: [UInt8]
        switch kind {
        case "truncated": bytes = Array(gz[..<(gz.count / 2)])
        case "crc":
            var b = gz
            b[gz.count - 6] ^= 0x55
            bytes = b
        case "garbage": bytes = gz + Array("trailing".utf8)
        case "empty": bytes = []
        default: bytes = Array(validLines(1).utf8)
        }
        let p = dir.write("in.jsonl.gz", bytes)
        let r = try run("mi-validate", ["--schema", "seed", "--pass", p])
        #expect(r.status == 65)
        let errors = r.stderrLines.filter { $0.contains("error:") }
        #expect(errors.count == 1)
        #expect(errors.first?.contains(p) == true)
        #expect(errors.first?.contains(message) == true, "\(r.stderr)")
    }

    @Test(arguments: [
        ("{\"instruction\":\"a\",\"instruction\":\"b\"}", "duplicate key"),
        ("{\"instruction\":\"caf\u{FFFD}\"}", ""), // placeholder, replaced by raw bytes below
        ("{\"instruction\": 3}", "expected string, got integer"),
        ("{\"input\":\"x\"}", "missing required field \"instruction\""),
        ("{\"instruction\":\"x\"", "invalid JSON"),
        ("[1]", "expected an object"),
    ])
    func rejectsBadRecordsWithFileAndLine(line: String, message: String) throws {
        let dir = TempDir()
        var bytes = Array((seed + "\n").utf8)
        if message.isEmpty {
            bytes += Array("{\"instruction\":\"caf".utf8) + [0xC3] + Array("\"}\n".utf8) // invalid UTF-8
        } else {
            bytes += Array((line + "\n").utf8)
        }
        bytes += Array((seed + "\n").utf8)
        let p = dir.write("in.jsonl", bytes)
        let r = try run("mi-validate", ["--schema", "seed", "--pass", p])
        #expect(r.status == 65)
        let errors = r.stderrLines.filter { $0.contains("error:") }
        #expect(errors.count == 1, "\(r.stderr)")
        #expect(errors.first?.contains("\(p):2: byte ") == true, "\(r.stderr)")
        #expect(errors.first?.contains(message.isEmpty ? "invalid UTF-8" : message) == true, "\(r.stderr)")
    }

    @Test func reportsEveryInvalidRecordWithoutPass() throws {
        let dir = TempDir()
        let p = dir.write("in.jsonl", seed + "\n{\"input\":\"\"}\n" + seed + "\n{\"instruction\":1}\n")
        let r = try run("mi-validate", ["--schema", "seed", p])
        #expect(r.status == 65)
        #expect(r.stderrLines.filter { $0.contains("error:") }.count == 2)
        #expect(r.stderr.contains("4 records: 2 valid, 2 invalid"))
    }

    @Test func badRecordsAreDivertedWhenAskedTo() throws {
        let dir = TempDir()
        let p = dir.write("in.jsonl", seed + "\n{oops\n" + seed + "\n")
        let dead = dir.path("dead.jsonl")
        let r = try run("mi-validate", ["--schema", "seed", "--pass", "--bad-records", dead, p])
        #expect(r.status == 0)
        #expect(r.stdoutText == seed + "\n" + seed + "\n")
        let letters = String(decoding: dir.read("dead.jsonl"), as: UTF8.self)
        #expect(letters.contains("\"line\":2"))
        #expect(letters.contains("\"raw\":\"{oops\""))
        #expect(r.stderr.contains("1 invalid"))
        // over the limit: stops with 65
        let many = dir.write("many.jsonl", "{x\n{y\n{z\n")
        let s = try run("mi-validate", ["--schema", "seed", "--pass", "--bad-records", dead, "--max-bad-records", "2", many])
        #expect(s.status == 65)
        #expect(s.stderr.contains("more than 2 bad records"))
    }

    @Test func edgeCasesOfLines() throws {
        let dir = TempDir()
        let crlf = dir.write("crlf.jsonl", [0xEF, 0xBB, 0xBF] + Array((seed + "\r\n\r\n" + seed).utf8))
        let r = try run("mi-validate", ["--schema", "seed", "--pass", crlf])
        #expect(r.status == 0)
        #expect(r.stdoutText == seed + "\n" + seed + "\n")
        #expect(r.stderr.contains("1 blank lines"))
        let empty = dir.write("empty.jsonl", "")
        let e = try run("mi-validate", ["--schema", "seed", empty])
        #expect(e.status == 0)
        #expect(e.stderr.contains("0 records"))
        let long = dir.write("long.jsonl", "{\"instruction\":\"" + String(repeating: "a", count: 3_000_000) + "\"}\n")
        let l = try run("mi-validate", ["--schema", "seed", long])
        #expect(l.status == 0)
        let capped = try run("mi-validate", ["--schema", "seed", "--max-line-bytes", "1000000", long])
        #expect(capped.status == 65)
        #expect(capped.stderr.contains("exceeds the limit"))
    }

    @Test func usageAndMissingInputHaveTheirOwnCodes() throws {
        let dir = TempDir()
        #expect(try run("mi-validate", ["--schema", "nonsense", "-"]).status == 64)
        #expect(try run("mi-validate", []).status == 64)
        let m = try run("mi-validate", ["--schema", "seed", dir.path("missing.jsonl")])
        #expect(m.status == 66)
        #expect(m.stderr.contains("missing.jsonl: cannot open"))
    }

    @Test func fileOutputIsAtomicAndGzipped() throws {
        let dir = TempDir()
        let p = dir.write("in.jsonl", validLines(100))
        let out = dir.path("out.jsonl.gz")
        let r = try run("mi-validate", ["--schema", "seed", "--pass", "-o", out, p])
        #expect(r.status == 0)
        #expect(Array(dir.read("out.jsonl.gz").prefix(2)) == [0x1f, 0x8b])
        #expect(!dir.exists("out.jsonl.gz.partial"))
        // a bad record means nothing is committed
        let bad = dir.write("bad.jsonl", validLines(5) + "{\n")
        let s = try run("mi-validate", ["--schema", "seed", "--pass", "-o", dir.path("o2.jsonl"), bad])
        #expect(s.status == 65)
        #expect(!dir.exists("o2.jsonl"))
        #expect(!dir.exists("o2.jsonl.partial"))
    }

    @Test func closedPipeStopsQuietly() throws {
        let dir = TempDir()
        let p = dir.write("big.jsonl", validLines(200_000))
        let proc = Process()
        proc.executableURL = Executables.url("mi-validate")
        proc.arguments = ["--schema", "seed", "--pass", p]
        let out = Pipe(), err = Pipe()
        proc.standardOutput = out
        proc.standardError = err
        try proc.run()
        _ = out.fileHandleForReading.readData(ofLength: 1000) // like `| head -c 1000`
        try out.fileHandleForReading.close()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        proc.waitUntilExit()
        #expect(proc.terminationReason == .exit)
        #expect(proc.terminationStatus == 0)
        #expect(!errText.contains("error"))
    }

    /// A full device made in a temporary directory (as root), never the machine's own.
    @Test(.enabled(if: canMakeDevices, "mknod needs root")) func fullDiskIsAnIOError() throws {
        let dir = TempDir()
        let p = dir.write("in.jsonl", validLines(50_000))
        let node = try #require(makeCharacterDevice(dir, "full", major: 1, minor: 7))
        let full = try #require(FileHandle(forWritingAtPath: node))
        let r = try run("mi-validate", ["--schema", "seed", "--pass", p], stdoutTo: full)
        #expect(r.status == 74)
        #expect(r.stderr.contains("No space left on device"))
    }

    @Test func sigtermLeavesNoCommittedOutput() throws {
        let dir = TempDir()
        let out = dir.path("out.jsonl")
        let proc = Process()
        proc.executableURL = Executables.url("mi-validate")
        proc.arguments = ["--schema", "seed", "--pass", "-o", out, "-"]
        let input = Pipe(), err = Pipe()
        proc.standardInput = input
        proc.standardError = err
        try proc.run()
        input.fileHandleForWriting.write(Data(validLines(10).utf8))
        input.fileHandleForWriting.write(Data("{\"instruction\":\"half a rec".utf8))
        usleep(300_000)
        proc.terminate() // SIGTERM while blocked reading stdin
        let watchdog = Thread {
            sleep(20)
            if proc.isRunning { kill(proc.processIdentifier, SIGKILL) }
        }
        watchdog.start()
        let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        proc.waitUntilExit()
        #expect(proc.terminationStatus == 75, "\(errText)")
        #expect(!dir.exists("out.jsonl"))
        // the partial holds only complete records
        let partial = String(decoding: dir.read("out.jsonl.partial"), as: UTF8.self)
        #expect(partial.isEmpty || partial.hasSuffix("\n"))
        #expect(!partial.contains("half"))
        try? input.fileHandleForWriting.close()
    }
}
