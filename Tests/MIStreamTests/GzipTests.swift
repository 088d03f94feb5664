import Foundation
import MIStream
import Testing

@Suite struct GzipTests {
    let lines = "{\"a\":1}\n{\"a\":2}\n"

    @Test func multiMemberIsOneStream() throws {
        let dir = TempDir()
        let two = try gzipMember(lines) + gzipMember("{\"a\":3}\n")
        let p = dir.write("two.jsonl.gz", two)
        let (records, error, _) = readAll([p])
        #expect(error == nil)
        #expect(records.map { $0["a"] } == [1, 2, 3].map { .number(JSONNumber($0)) })
    }

    @Test func magicDecidesNotName() throws {
        let dir = TempDir()
        // gzip data under a plain name is still decompressed
        let p = dir.write("data.jsonl", try gzipMember(lines))
        #expect(readAll([p]).records.count == 2)
        // a .gz name without the magic is an error
        let q = dir.write("plain.jsonl.gz", lines)
        let e = readAll([q]).error
        #expect(e?.exitStatus == .dataError)
        #expect(e?.description.contains("not gzip data") == true)
    }

    @Test func zeroByteGzIsAnErrorButEmptyMemberIsEmpty() throws {
        let dir = TempDir()
        let empty = dir.write("empty.jsonl.gz", [])
        #expect(readAll([empty]).error?.description.contains("empty file") == true)
        let member = dir.write("member.jsonl.gz", try gzipMember(""))
        let (records, error, _) = readAll([member])
        #expect(error == nil)
        #expect(records.isEmpty)
        let plain = dir.write("empty.jsonl", [])
        #expect(readAll([plain]).error == nil)
    }

    @Test func truncationIsReportedWithCompleteRecordCount() throws {
        let dir = TempDir()
        var big = ""
        for i in 0..<2000 { big += "{\"i\":\(i),\"pad\":\"\(String(repeating: "x", count: i % 50))\"}\n" }
        let gz = try gzipMember(big)
        for cut in [10, gz.count / 2, gz.count - 4, gz.count - 1] {
            let p = dir.write("cut\(cut).gz", Array(gz[..<cut]))
            let (records, error, _) = readAll([p])
            guard case let .corruptStream(_, message, complete)? = error else {
                Issue.record("cut at \(cut): expected corruptStream, got \(String(describing: error))")
                continue
            }
            #expect(message.contains("truncated"))
            #expect(complete == records.count)
            #expect(records.count <= 2000)
        }
    }

    @Test func crcAndLengthMismatchAreErrors() throws {
        let dir = TempDir()
        let gz = try gzipMember(lines)
        var badCRC = gz
        badCRC[gz.count - 8] ^= 0xFF
        #expect(readAll([dir.write("crc.gz", badCRC)]).error?.description.contains("incorrect data check") == true)
        var badLength = gz
        badLength[gz.count - 1] ^= 0x01
        #expect(readAll([dir.write("len.gz", badLength)]).error?.description.contains("incorrect length check") == true)
    }

    @Test func garbageAfterMemberIsAnError() throws {
        let dir = TempDir()
        let gz = try gzipMember(lines)
        for tail: [UInt8] in [[0x00], [0x00, 0x00, 0x00, 0x00], Array("junk\n".utf8), [0x1f]] {
            let (records, error, _) = readAll([dir.write("g.gz", gz + tail)])
            #expect(error?.exitStatus == .dataError, "tail \(tail)")
            #expect(error?.description.contains("garbage after gzip member 1") == true)
            #expect(records.count == 2)
        }
    }

    @Test func writerIsDeterministicAndMembered() throws {
        let dir = TempDir()
        func write(_ name: String) throws -> [UInt8] {
            let w = try JSONLWriter(path: dir.path(name), flushThreshold: 64)
            for i in 0..<50 { try w.write(object("{\"i\":\(i)}")) }
            try w.commit()
            return dir.read(name)
        }
        let a = try write("a.jsonl.gz")
        let b = try write("b.jsonl.gz")
        #expect(a == b)
        #expect(Array(a[0..<2]) == [0x1f, 0x8b])
        #expect(Array(a[4..<8]) == [0, 0, 0, 0], "mtime must be zero")
        // a member per flush: the magic appears more than once
        let starts = (0..<(a.count - 2)).filter { a[$0] == 0x1f && a[$0 + 1] == 0x8b && a[$0 + 2] == 8 }
        #expect(starts.count > 1)
        let (records, error, _) = readAll([dir.path("a.jsonl.gz")])
        #expect(error == nil)
        #expect(records.count == 50)
    }

    @Test func interoperatesWithSystemGzip() throws {
        let dir = TempDir()
        let w = try JSONLWriter(path: dir.path("x.jsonl.gz"))
        try w.write(object("{\"text\":\"héllo\"}"))
        try w.commit()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-t", dir.path("x.jsonl.gz")]
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
    }
}
