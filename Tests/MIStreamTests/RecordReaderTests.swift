import MIStream
import Testing

@Suite struct RecordReaderTests {
    @Test func acceptsCRLFAndBOMAtStart() throws {
        let dir = TempDir()
        let p = dir.write("x.jsonl", [0xEF, 0xBB, 0xBF] + Array("{\"a\":1}\r\n{\"a\":2}\r\n".utf8))
        let (records, error, _) = readAll([p])
        #expect(error == nil)
        #expect(records.count == 2)
        // a BOM anywhere else is an error
        let q = dir.write("y.jsonl", Array("{\"a\":1}\n".utf8) + [0xEF, 0xBB, 0xBF] + Array("{\"a\":2}\n".utf8))
        guard case let .badRecord(loc, _)? = readAll([q]).error else {
            Issue.record("BOM on line 2 accepted")
            return
        }
        #expect(loc.line == 2)
    }

    @Test func finalLineWithoutNewline() {
        let dir = TempDir()
        #expect(readAll([dir.write("ok.jsonl", "{\"a\":1}\n{\"a\":2}")]).records.count == 2)
        let (records, error, _) = readAll([dir.write("torn.jsonl", "{\"a\":1}\n{\"a\":2")])
        #expect(records.count == 1)
        #expect(error?.description.contains("truncated final record") == true)
        #expect(error?.description.contains("torn.jsonl:2") == true)
    }

    @Test func blankLinesAreSkippedAndCounted() {
        let dir = TempDir()
        let (records, error, reader) = readAll([dir.write("b.jsonl", "\n{\"a\":1}\n   \n\r\n{\"a\":2}\n\n")])
        #expect(error == nil)
        #expect(records.count == 2)
        #expect(reader.blankLines == 4)
    }

    @Test func errorNamesFileLineAndOffset() {
        let dir = TempDir()
        let p = dir.write("e.jsonl", "{\"a\":1}\n{\"a\":2}\n{\"a\" 3}\n")
        guard case let .badRecord(loc, message)? = readAll([p]).error else {
            Issue.record("accepted")
            return
        }
        #expect(loc == RecordLocation(source: p, line: 3, offset: 16 + 5))
        #expect(message.contains("expected ':'"))
        #expect(StreamError.badRecord(loc, message: message).description.hasPrefix("\(p):3: byte 21: "))
    }

    @Test func nonObjectRecordsAreBad() {
        let dir = TempDir()
        #expect(readAll([dir.write("a.jsonl", "[1,2]\n")]).error?.description.contains("expected an object") == true)
    }

    @Test func longLinesAreBadNeverTruncated() {
        let dir = TempDir()
        let long = "{\"t\":\"" + String(repeating: "x", count: 5000) + "\"}"
        let p = dir.write("l.jsonl", "{\"a\":1}\n\(long)\n{\"a\":2}\n")
        var options = ReadOptions()
        options.maxLineBytes = 1000
        guard case let .badRecord(loc, message)? = readAll([p], options: options).error else {
            Issue.record("long line accepted")
            return
        }
        #expect(loc.line == 2)
        #expect(message.contains("exceeds the limit"))
        // diverted, the records around it are intact
        let dl = dir.path("dead.jsonl")
        let (records, error, _) = readAll([p], options: options, policy: BadRecordPolicy(deadLetterPath: dl, maxBadRecords: 5))
        #expect(error == nil)
        #expect(records.count == 2)
        // within the cap it is read whole, across many small chunks
        options.maxLineBytes = 10_000
        let (all, e2, _) = readAll([p], options: options)
        #expect(e2 == nil)
        #expect(all[1]["t"] == .string(String(repeating: "x", count: 5000)))
    }

    @Test func linesSpanningChunkBoundaries() throws {
        let dir = TempDir()
        var text = ""
        for i in 0..<300 { text += "{\"i\":\(i),\"s\":\"\(String(repeating: "é", count: i % 37))\"}\r\n" }
        let p = dir.write("c.jsonl", text)
        let source = try openInput(p)
        let lines = LineReader(source: source, maxLineBytes: 1 << 20, chunkSize: 7)
        var n = 0
        while let line = try lines.next() {
            guard case let .text(bytes, terminated) = line else {
                Issue.record("too long")
                return
            }
            #expect(terminated)
            let v = try JSONParser().parse(bytes)
            guard case let .object(o) = v else { return }
            #expect(o["i"] == .number(JSONNumber(n)))
            n += 1
        }
        #expect(n == 300)
    }

    @Test func severalInputsReadInOrder() {
        let dir = TempDir()
        let a = dir.write("a.jsonl", "{\"i\":1}\n")
        let b = dir.write("b.jsonl", "{\"i\":2}\n{\"i\":3}\n")
        #expect(readAll([a, b]).records.map { $0["i"]! } == [1, 2, 3].map { .number(JSONNumber($0)) })
        let missing = readAll([a, dir.path("nope.jsonl")])
        #expect(missing.error?.exitStatus == .noInput)
        #expect(missing.records.count == 1)
    }

    @Test func deadLetterKeepsReasonAndRawBytes() throws {
        let dir = TempDir()
        let p = dir.write("d.jsonl", Array("{\"a\":1}\n{bad\n".utf8) + [0x7B, 0xFF, 0x7D, 0x0A] + Array("{\"a\":2}\n".utf8))
        let dl = dir.path("dead.jsonl")
        let policy = BadRecordPolicy(deadLetterPath: dl, maxBadRecords: 10)
        let (records, error, _) = readAll([p], policy: policy)
        #expect(error == nil)
        #expect(records.count == 2)
        #expect(policy.count == 2)
        try policy.commit()
        let (letters, e2, _) = readAll([dl])
        #expect(e2 == nil)
        #expect(letters.count == 2)
        #expect(letters[0]["raw"] == .string("{bad"))
        #expect(letters[0]["line"] == .number(JSONNumber(2)))
        #expect(letters[1]["raw_base64"] == .string("e/99"))
        #expect(try letters[1].string("error").contains("invalid UTF-8"))
        // the limit stops the run
        let strict = BadRecordPolicy(deadLetterPath: dir.path("dead2.jsonl"), maxBadRecords: 1)
        guard case .tooManyBadRecords? = readAll([p], policy: strict).error else {
            Issue.record("limit ignored")
            return
        }
    }
}
