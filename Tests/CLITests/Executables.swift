import Foundation
import Testing

/// The built executables: MI_BIN_DIR (set by `make test`), else beside the test bundle.
enum Executables {
    static let directory: URL = {
        // The tools' default precision is the CPU's fastest (bf16 with AVX512-BF16); the reference
        // tests compare with f32 and f64 fixtures, so every tool a test starts runs f32 unless the
        // test asks otherwise (set here, before the first launch, for tests that start a Process).
        setenv("MI_COMPUTE", "f32", 0)
        if let dir = ProcessInfo.processInfo.environment["MI_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }()

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
}

struct RunResult {
    var status: Int32
    var signaled: Bool
    var stdout: [UInt8]
    var stderr: String
    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrLines: [String] { stderr.split(separator: "\n").map(String.init) }
}

/// Runs an executable to completion with `stdin` as its input.
func run(
    _ name: String, _ args: [String], stdin: [UInt8] = [], environment: [String: String] = [:],
    removing: [String] = [], stdoutTo: FileHandle? = nil
) throws -> RunResult {
    let p = Process()
    p.executableURL = Executables.url(name)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    for k in removing { env.removeValue(forKey: k) }
    _ = Executables.directory // sets the MI_COMPUTE default
    if env["MI_COMPUTE"] == nil, !removing.contains("MI_COMPUTE") { env["MI_COMPUTE"] = "f32" }
    env.merge(environment) { _, new in new }
    p.environment = env
    let input = Pipe(), output = Pipe(), errors = Pipe()
    p.standardInput = input
    p.standardOutput = stdoutTo ?? output
    p.standardError = errors
    try p.run()
    // Feed stdin and drain both outputs concurrently so no pipe fills up.
    let writer = Thread {
        input.fileHandleForWriting.write(Data(stdin))
        try? input.fileHandleForWriting.close()
    }
    writer.start()
    let outData = LockedData()
    let outThread = Thread { outData.set(output.fileHandleForReading.readDataToEndOfFile()) }
    if stdoutTo == nil { outThread.start() }
    let err = errors.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    if stdoutTo == nil { while !outData.done { usleep(1000) } }
    return RunResult(
        status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
        stdout: [UInt8](outData.value), stderr: String(decoding: err, as: UTF8.self))
}

final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var finished = false
    func set(_ d: Data) {
        lock.lock()
        data = d
        finished = true
        lock.unlock()
    }
    var done: Bool {
        lock.lock()
        defer { lock.unlock() }
        return finished
    }
    var value: Data {
        lock.lock()
        defer { lock.unlock() }
        return data
    }
}

final class TempDir {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("mi-cli-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    @discardableResult func write(_ name: String, _ bytes: [UInt8]) -> String {
        FileManager.default.createFile(atPath: path(name), contents: Data(bytes))
        return path(name)
    }
    @discardableResult func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }
    func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: path(name)) }
    func read(_ name: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path(name)) ?? Data()) }
}

/// gzip via the system tool, so our reader is tested on bytes we did not write.
func systemGzip(_ text: String) throws -> [UInt8] {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/gzip")
    p.arguments = ["-c", "-n"]
    let i = Pipe(), o = Pipe()
    p.standardInput = i
    p.standardOutput = o
    try p.run()
    let w = Thread {
        i.fileHandleForWriting.write(Data(text.utf8))
        try? i.fileHandleForWriting.close()
    }
    w.start()
    let data = o.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return [UInt8](data)
}

/// The text of a gzip file, through the system tool.
func systemGunzip(_ path: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/gzip")
    p.arguments = ["-dc", path]
    let o = Pipe()
    p.standardOutput = o
    try p.run()
    let data = o.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Runs `tool` with `flags` to a file, leaves the first `keep` records as an interrupted run's
/// OUT.partial (plus `tornTail`, a cut-off last line), resumes with --resume, and checks that the
/// resumed file equals the uninterrupted one and no partial is left. Returns the whole run's lines.
@discardableResult
func expectResumeEqualsWholeRun(
    _ tool: String, _ flags: [String], in dir: TempDir, keep: Int, records: Int,
    tornTail: String = ""
) throws -> [Substring] {
    let whole = try run(tool, flags + ["-o", dir.path("whole.jsonl")])
    #expect(whole.status == 0, "\(whole.stderr)")
    let lines = String(decoding: dir.read("whole.jsonl"), as: UTF8.self).split(separator: "\n")
    #expect(lines.count == records)
    dir.write("cut.jsonl.partial", lines.prefix(keep).joined(separator: "\n") + "\n" + tornTail)
    let resumed = try run(tool, flags + ["-o", dir.path("cut.jsonl"), "--resume"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(dir.read("cut.jsonl") == dir.read("whole.jsonl"))
    #expect(!dir.exists("cut.jsonl.partial"))
    return lines
}
