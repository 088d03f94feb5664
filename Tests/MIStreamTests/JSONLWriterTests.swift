import Foundation
import MIStream
import Testing

@Suite struct JSONLWriterTests {
    @Test func outputAppearsOnlyOnCommit() throws {
        let dir = TempDir()
        let final = dir.path("out.jsonl")
        let w = try JSONLWriter(path: final)
        try w.write(object(#"{"a":1,"extra":{"kept":[1.50,"x"]}}"#))
        try w.flush()
        #expect(!FileManager.default.fileExists(atPath: final))
        #expect(FileManager.default.fileExists(atPath: final + ".partial"))
        try w.commit()
        #expect(FileManager.default.fileExists(atPath: final))
        #expect(!FileManager.default.fileExists(atPath: final + ".partial"))
        #expect(String(decoding: dir.read("out.jsonl"), as: UTF8.self) == "{\"a\":1,\"extra\":{\"kept\":[1.50,\"x\"]}}\n")
    }

    @Test func discardRemovesPartialAndLeavePartialKeepsCompleteRecords() throws {
        let dir = TempDir()
        let a = try JSONLWriter(path: dir.path("a.jsonl.gz"))
        try a.write(object(#"{"a":1}"#))
        a.discard()
        #expect(!FileManager.default.fileExists(atPath: dir.path("a.jsonl.gz.partial")))
        let b = try JSONLWriter(path: dir.path("b.jsonl.gz"))
        try b.write(object(#"{"b":1}"#))
        b.leavePartial()
        let (records, error, _) = readAll([dir.path("b.jsonl.gz.partial")])
        #expect(error == nil)
        #expect(records.count == 1)
    }

    /// /dev/full when it is the kernel's full device (character device 1:7), else nil.
    static let fullDevice: String? = {
        var st = stat()
        guard stat("/dev/full", &st) == 0, st.st_mode & S_IFMT == S_IFCHR, st.st_rdev == 0x107 else { return nil }
        return "/dev/full"
    }()

    @Test(.enabled(if: fullDevice != nil, "/dev/full is not the kernel's full device (character device 1:7) on this machine"))
    func fullDiskIsAnError() throws {
        let sink = FileDescriptorSink(fd: open("/dev/full", O_WRONLY), name: "/dev/full")
        let bytes = [UInt8](repeating: 65, count: 100)
        #expect(throws: StreamError.writeFailed(path: "/dev/full", reason: "No space left on device")) {
            try sink.write(bytes, count: bytes.count)
        }
    }

    @Test func cannotCreateInMissingDirectory() {
        let dir = TempDir()
        #expect(throws: StreamError.self) { try JSONLWriter(path: dir.path("no/such/dir/out.jsonl")) }
    }
}
