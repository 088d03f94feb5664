import MIStream
import Testing

@Suite struct JSONParserTests {
    func parse(_ bytes: [UInt8]) -> Result<JSONValue, JSONParser.Failure> {
        Result { () throws(JSONParser.Failure) in try JSONParser().parse(bytes) }
    }

    func rejects(_ text: String, _ fragment: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        rejects(Array(text.utf8), fragment, sourceLocation: sourceLocation)
    }

    func rejects(_ bytes: [UInt8], _ fragment: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) {
        switch parse(bytes) {
        case .success(let v): Issue.record("accepted \(bytes): \(v)", sourceLocation: sourceLocation)
        case .failure(let f): #expect(f.message.contains(fragment), "\(f.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func roundTripsValues() throws {
        let cases = [
            #"{"a":1,"b":[true,false,null],"c":{"d":"e"},"n":-0.5e-3,"big":123456789012345678901234567890}"#,
            #"{"s":"quote \" backslash \\ newline \n tab \t ctrl \u0001","u":"é中😀"}"#,
            #"[]"#, #"{}"#, #""x""#, "0", "-1.25E+10",
        ]
        for text in cases {
            let v = try JSONParser().parse(text)
            let again = try JSONParser().parse(JSONWriter.string(v))
            #expect(v == again, "\(text)")
        }
        // numbers keep their text, so 1.0 stays 1.0 and huge integers are not rounded
        #expect(JSONWriter.string(try JSONParser().parse("[1.0,1e5,123456789012345678901234567890]")) == "[1.0,1e5,123456789012345678901234567890]")
    }

    @Test func decodesEscapesIncludingSurrogatePairs() throws {
        let v = try JSONParser().parse(#""\u00e9\ud83d\ude00\/\b\f""#)
        #expect(v == .string("é😀/\u{08}\u{0C}"))
    }

    @Test func keyOrderIsKept() throws {
        guard case let .object(o) = try JSONParser().parse(#"{"z":1,"a":2,"m":3}"#) else {
            Issue.record("not an object")
            return
        }
        #expect(o.keys == ["z", "a", "m"])
        #expect(JSONWriter.string(.object(o)) == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test func rejectsDuplicateKeys() {
        rejects(#"{"a":1,"a":2}"#, "duplicate key \"a\"")
        // beyond the linear-scan size too
        let many = (0..<40).map { "\"k\($0)\":\($0)" }.joined(separator: ",")
        rejects("{\(many),\"k7\":0}", "duplicate key \"k7\"")
        rejects(#"{"o":{"x":1,"x":1}}"#, "duplicate key")
    }

    @Test func rejectsInvalidUTF8() {
        rejects([0x22, 0xFF, 0x22], "invalid UTF-8") // not a lead byte
        rejects([0x22, 0xC0, 0xAF, 0x22], "invalid UTF-8") // overlong '/'
        rejects([0x22, 0xED, 0xA0, 0x80, 0x22], "invalid UTF-8") // UTF-16 surrogate encoded
        rejects([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], "invalid UTF-8") // above U+10FFFF
        rejects([0x22, 0xE4, 0xB8, 0x22], "invalid UTF-8") // truncated sequence
    }

    @Test func rejectsMalformedJSON() {
        rejects("", "empty record")
        rejects(#"{"a":1"#, "end of record")
        rejects(#"{"a":1,}"#, "expected a string key")
        rejects(#"[1,2,]"#, "unexpected character")
        rejects(#"{"a":1} x"#, "after the JSON value")
        rejects("{'a':1}", "expected a string key")
        rejects("[01]", "leading zero")
        rejects("[1.]", "digit after '.'")
        rejects("[.5]", "unexpected character")
        rejects("[1e]", "exponent")
        rejects("[NaN]", "unexpected character")
        rejects("[Infinity]", "unexpected character")
        rejects("[tru]", "literal")
        rejects("\"a\tb\"", "control character")
        rejects(#""\ud800""#, "lone high surrogate")
        rejects(#""\udc00""#, "lone low surrogate")
        rejects(#""\x""#, "invalid escape")
        rejects(#""\u12g4""#, "hex digit")
        rejects([0xEF, 0xBB, 0xBF] + Array("{}".utf8), "unexpected character") // BOM is not JSON
    }

    @Test func capsNesting() throws {
        let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
        #expect(throws: Never.self) { try JSONParser().parse(ok) }
        let deep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
        rejects(deep, "nesting deeper than 128")
        let veryDeep = String(repeating: "{\"a\":", count: 100_000)
        rejects(veryDeep, "nesting deeper")
    }

    @Test func reportsByteOffset() {
        if case .failure(let f) = parse(Array(#"{"a": 1, "b" 2}"#.utf8)) { #expect(f.offset == 13) } else { Issue.record("accepted") }
    }

    @Test func typedFieldAccessNeverCoerces() throws {
        guard case let .object(o) = try JSONParser().parse(#"{"s":"1","n":1,"f":1.5,"b":true,"z":null}"#) else { return }
        #expect(try o.string("s") == "1")
        #expect(throws: FieldError(field: "n", problem: "expected string, got integer")) { try o.string("n") }
        #expect(throws: FieldError(field: "s", problem: "expected number, got string")) { try o.double("s") }
        #expect(throws: FieldError(field: "f", problem: "expected integer, got number")) { try o.int("f") }
        #expect(throws: FieldError(field: "missing", problem: "missing")) { try o.bool("missing") }
        #expect(try o.optionalString("z") == nil)
        #expect(try o.int("n") == 1)
    }

    @Test func numbersFromDoublesAreValidJSON() throws {
        for d in [0.1, 1e-7, -3.5, 12345.0, 1e300, 5e-324] {
            let n = try #require(JSONNumber(d))
            #expect(throws: Never.self) { try JSONParser().parse(n.text) }
            #expect(n.double == d)
        }
        #expect(JSONNumber(Double.nan) == nil)
        #expect(JSONNumber(Double.infinity) == nil)
    }
}
