import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Device nodes made in a temporary directory (never the machine's own): a node with the numbers
/// of /dev/null (1, 3) or /dev/full (1, 7). Nil where mknod is not allowed (not root).
func makeCharacterDevice(_ dir: TempDir, _ name: String, major: UInt32, minor: UInt32) -> String? {
    let path = dir.path(name)
    let dev = UInt64(minor & 0xff) | (UInt64(major & 0xfff) << 8) | (UInt64(minor & ~0xff) << 12) | (UInt64(major & ~0xfff) << 32)
    return mknod(path, S_IFCHR | 0o666, dev_t(dev)) == 0 ? path : nil
}

let canMakeDevices: Bool = {
    let dir = TempDir()
    return makeCharacterDevice(dir, "probe", major: 1, minor: 3) != nil
}()

func fileType(_ path: String) -> mode_t {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode & S_IFMT : 0
}

/// Outputs that are not regular files are written into, never replaced; two writers of one output
/// never interleave; a resume with other settings is refused.
@Suite struct OutputCommitTests {
    let records = (0..<40).map { #"{"id":"r\#($0)","instruction":"Describe the number \#($0) in a sentence."}"# }.joined(separator: "\n") + "\n"

    @Test(.enabled(if: canMakeDevices, "mknod needs root")) func aDeviceNodeStaysADevice() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let null = try #require(makeCharacterDevice(dir, "null", major: 1, minor: 3))
        let r = try run("mi-dedupe", [input, "-o", null])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileType(null) == S_IFCHR)
        #expect(!dir.exists("null.partial"))
        let full = try #require(makeCharacterDevice(dir, "full", major: 1, minor: 7))
        let f = try run("mi-dedupe", [input, "-o", full])
        #expect(f.status == 74, "a full device is a write error, not success")
        #expect(fileType(full) == S_IFCHR)
        let help = try run("mi-dedupe", ["--help"], stdoutTo: try #require(FileHandle(forWritingAtPath: full)))
        #expect(help.status == 74, "--help that cannot be written: \(help.stderr)")
        #expect(help.stderr.contains("No space left on device"))
    }

    @Test func aFIFOsReaderGetsEveryRecord() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let fifo = dir.path("fifo")
        #expect(mkfifo(fifo, 0o644) == 0)
        final class Received: @unchecked Sendable { var data = Data() }
        let received = Received()
        let reader = Thread {
            let fd = open(fifo, O_RDONLY)
            var chunk = [UInt8](repeating: 0, count: 4096)
            while fd >= 0 {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                received.data.append(contentsOf: chunk[..<n])
            }
            close(fd)
        }
        reader.start()
        let r = try run("mi-dedupe", [input, "--threshold", "0.99", "-o", fifo])
        #expect(r.status == 0, "\(r.stderr)")
        while !reader.isFinished { usleep(10_000) }
        #expect(String(decoding: received.data, as: UTF8.self).split(separator: "\n").count == 40)
        #expect(fileType(fifo) == S_IFIFO)
    }

    @Test func aLinksTargetHoldsTheOutputAndTheLinkStays() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        try FileManager.default.createDirectory(atPath: dir.path("data"), withIntermediateDirectories: true)
        #expect(symlink("data/target.jsonl", dir.path("link.jsonl")) == 0, "a dangling link: the output is created where it points")
        let r = try run("mi-dedupe", [input, "--threshold", "0.99", "-o", dir.path("link.jsonl")])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(fileType(dir.path("link.jsonl")) == S_IFLNK)
        #expect(String(decoding: dir.read("data/target.jsonl"), as: UTF8.self).split(separator: "\n").count == 40)
        // Again, now that the target exists: replaced atomically, the link kept.
        let again = try run("mi-dedupe", [input, "--threshold", "0.99", "-o", dir.path("link.jsonl")])
        #expect(again.status == 0)
        #expect(fileType(dir.path("link.jsonl")) == S_IFLNK)
        #expect(!dir.exists("data/target.jsonl.partial"))
    }

    @Test func devStdoutIsStdout() throws {
        let r = try run("mi-dedupe", ["--threshold", "0.99", "-o", "/dev/stdout"], stdin: Array(records.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdoutText.split(separator: "\n").count == 40)
    }

    /// The first writer holds its output (its input is a FIFO kept open); the second gets 75 and
    /// leaves the first's file intact.
    @Test func twoWritersOfOneOutputGiveOneSuccessAnd75() throws {
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let fifo = dir.path("slow-input")
        #expect(mkfifo(fifo, 0o644) == 0)
        let out = dir.path("out.jsonl")
        let first = Process()
        first.executableURL = Executables.url("mi-dedupe")
        first.arguments = [fifo, "--threshold", "0.99", "-o", out]
        first.standardError = FileHandle.nullDevice
        try first.run()
        let feed = try #require(FileHandle(forWritingAtPath: fifo))
        feed.write(Data(records.utf8.prefix(200)))
        while !dir.exists("out.jsonl.partial") { usleep(10_000) }
        let second = try run("mi-dedupe", [input, "-o", out])
        #expect(second.status == 75, "\(second.stderr)")
        #expect(second.stderr.contains("out.jsonl.partial: another process"))
        #expect(second.stderr.contains("(pid \(first.processIdentifier))"))
        feed.write(Data(records.utf8.dropFirst(200)))
        try feed.close()
        first.waitUntilExit()
        #expect(first.terminationStatus == 0)
        #expect(dir.read("out.jsonl") == Array(records.utf8))
    }

    @Test func aNumberBeyondTheDoubleRangeIsRefused() throws {
        let line =
            #"{"id":"a","prompt_id":"p","prompt":"make a task","raw":"<instruction>x</instruction>","instruction":"x","response":"y","influence":1e400}"#
            + "\n"
        let r = try run("mi-pair", [], stdin: Array(line.utf8))
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("\"influence\": 1e400 is outside the range of a double"))
    }

    /// An interrupted mi-respond leaves its settings beside OUT.partial; a resume with another seed
    /// is refused (78) naming it, the same settings finish the file as an uninterrupted run.
    @Test func aResumeWithOtherSettingsIsRefused() throws {
        let dir = TempDir()
        let flags = ["--teacher", SFTCLITests.tiny, "--max-tokens", "4", "--batch-size", "2", "--seed", "1"]
        let whole = try run("mi-respond", flags + ["-o", dir.path("whole.jsonl"), dir.write("in.jsonl", records)])
        #expect(whole.status == 0, "\(whole.stderr)")

        let fifo = dir.path("input")
        #expect(mkfifo(fifo, 0o644) == 0)
        let p = Process()
        p.executableURL = Executables.url("mi-respond")
        p.arguments = flags + ["-o", dir.path("cut.jsonl"), fifo]
        p.standardError = FileHandle.nullDevice
        try p.run()
        let feed = try #require(FileHandle(forWritingAtPath: fifo))
        let lines = records.split(separator: "\n")
        feed.write(Data((lines.prefix(4).joined(separator: "\n") + "\n").utf8))
        // Two batches of two are answered and flushed; then the run is interrupted.
        while String(decoding: dir.read("cut.jsonl.partial"), as: UTF8.self).split(separator: "\n").count < 4 { usleep(10_000) }
        p.interrupt()
        p.waitUntilExit()
        #expect(dir.exists("cut.jsonl.partial.settings"))

        let other = try run("mi-respond", flags.dropLast(2) + ["--seed", "2", "-o", dir.path("cut.jsonl"), "--resume", dir.path("in.jsonl")])
        #expect(other.status == 78, "\(other.stderr)")
        #expect(other.stderr.contains("made with seed = 1, this run has seed = 2"))
        let same = try run("mi-respond", flags + ["-o", dir.path("cut.jsonl"), "--resume", dir.path("in.jsonl")])
        #expect(same.status == 0, "\(same.stderr)")
        #expect(dir.read("cut.jsonl") == dir.read("whole.jsonl"))
        #expect(!dir.exists("cut.jsonl.partial.settings"))
    }
}

/// The crash test in its small form: two SIGKILLs of the whole run at random moments and one of
/// mi-run alone beside its running tool; the finished run equals an uninterrupted one byte for byte.
@Suite struct CrashTests {
    @Test func killedRunsEndAsAnUninterruptedRun() throws {
        let script = RunCLITests.repo.appendingPathComponent("scripts/crash-test.sh").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script, "2"]
        p.environment = ProcessInfo.processInfo.environment.merging(["MI_BIN_DIR": Executables.directory.path]) { _, new in new }
        let errors = Pipe()
        p.standardError = errors
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(stderr)")
        #expect(stderr.contains("ok: 46 files byte-identical to the uninterrupted run after 2 kills"), "\(stderr)")
        #expect(stderr.contains("exit 75, as it should"))
    }
}

/// A weaker OPENBLAS_CORETYPE than the CPU runs is respected, and mi-bench says what it costs
/// (mi-run too, at a terminal).
@Suite struct KernelSettingTests {
    @Test func miBenchWarnsOfAWeakerKernelSetting() throws {
        let runtime = try run("mi-model", ["runtime"], removing: ["OPENBLAS_CORETYPE"])
        let best = (try JSONSerialization.jsonObject(with: Data(runtime.stdout)) as? [String: Any])?["cpu_best_core"] as? String
        let weak = try run("mi-bench", ["--model", "/nonexistent.gguf"], environment: ["OPENBLAS_CORETYPE": "Prescott"])
        #expect(weak.stderr.contains("OPENBLAS_CORETYPE=Prescott is set, but this CPU runs") == (best != nil), "\(weak.stderr)")
        let unset = try run("mi-bench", ["--model", "/nonexistent.gguf"], removing: ["OPENBLAS_CORETYPE"])
        #expect(!unset.stderr.contains("OPENBLAS_CORETYPE"))
    }
}
