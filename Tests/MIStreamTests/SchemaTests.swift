import Foundation
import MISchemas
import MIStream
import Testing

@Suite struct SchemaTests {
    func lines(_ name: String) throws -> [JSONObject] {
        let url = repositoryRoot.appendingPathComponent("Tests/Fixtures/schema-examples/\(name)")
        let (records, error, _) = readAll([url.path])
        if let error { throw error }
        return records
    }

    @Test(arguments: EmbeddedSchemas.kinds)
    func shippedSchemasAcceptTheirExamplesAndRejectTheCounterexamples(kind: String) throws {
        let schema = try RecordKind.schema(kind)
        let valid = try lines("\(kind).valid.jsonl")
        #expect(!valid.isEmpty)
        for record in valid {
            #expect(schema.firstViolation(.object(record)) == nil, "\(kind): \(JSONWriter.string(.object(record)))")
        }
        let invalid = try lines("\(kind).invalid.jsonl")
        #expect(!invalid.isEmpty)
        for record in invalid {
            let why = (try? record.string("_why")) ?? "?"
            #expect(schema.firstViolation(.object(record)) != nil, "\(kind) accepted: \(why)")
        }
    }

    @Test func embeddedSchemasAreTheFilesInSchemasDirectory() throws {
        for kind in EmbeddedSchemas.kinds {
            let onDisk = try Data(contentsOf: repositoryRoot.appendingPathComponent("schemas/\(kind).schema.json"))
            #expect([UInt8](onDisk) == EmbeddedSchemas.bytes(for: kind), "\(kind): rebuild to embed the current schema")
        }
    }

    @Test func projectDataMatchesItsSchemas() throws {
        let seeds = try RecordKind.schema("seed")
        let responses = try RecordKind.schema("response")
        for (file, schema, minimum) in [("data/seeds.jsonl", seeds, 60), ("data/reference.jsonl", responses, 48)] {
            let (records, error, _) = readAll([repositoryRoot.appendingPathComponent(file).path])
            #expect(error == nil)
            #expect(records.count >= minimum, "\(file)")
            for r in records { #expect(schema.firstViolation(.object(r)) == nil, "\(file): \(JSONWriter.string(.object(r)))") }
            let ids = records.compactMap { try? $0.string("id") }
            #expect(Set(ids).count == records.count, "\(file): ids must be unique")
        }
    }

    func check(_ schema: String, _ value: String) throws -> String? {
        try JSONSchema(JSONParser().parse(schema)).firstViolation(JSONParser().parse(value))
    }

    @Test func keywordSemantics() throws {
        #expect(try check(#"{"type":"integer"}"#, "3.0") == nil) // 3.0 is an integer in JSON Schema
        #expect(try check(#"{"type":"integer"}"#, "3.5") != nil)
        #expect(try check(#"{"type":"number"}"#, "3") == nil)
        #expect(try check(#"{"type":["string","null"]}"#, "null") == nil)
        #expect(try check(#"{"minLength":2}"#, #""é""#)?.contains("shorter") == true) // code points, not bytes
        #expect(try check(#"{"exclusiveMinimum":0}"#, "0") != nil)
        #expect(try check(#"{"maximum":1}"#, "1") == nil)
        #expect(try check(#"{"enum":["a","b"]}"#, #""c""#) != nil)
        #expect(try check(#"{"const":{"x":1}}"#, #"{"x":1.0}"#) == nil)
        #expect(try check(#"{"items":{"type":"string"},"minItems":1}"#, "[]") != nil)
        #expect(try check(#"{"items":{"type":"string"}}"#, #"["a",2]"#)?.contains("/1") == true)
        #expect(try check(#"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#, "true") != nil)
        #expect(try check(#"{"oneOf":[{"type":"number"},{"type":"integer"}]}"#, "1") != nil) // matches both
        #expect(try check(#"{"not":{"type":"null"}}"#, "null") != nil)
        #expect(try check(##"{"properties":{"a":{"$ref":"#/$defs/p"}},"$defs":{"p":{"minimum":0}}}"##, #"{"a":-1}"#)?.contains("field /a") == true)
        #expect(try check(#"{"additionalProperties":false,"properties":{"a":true}}"#, #"{"a":1,"b":2}"#)?.contains("unexpected field \"b\"") == true)
        #expect(try check(#"{"required":["a"]}"#, #"{"b":1}"#) == #"missing required field "a""#)
    }

    @Test func unsupportedKeywordsAreRefusedNotIgnored() {
        #expect(throws: JSONSchema.LoadError.self) { try JSONSchema(JSONParser().parse(#"{"pattern":"^a"}"#)) }
        #expect(throws: JSONSchema.LoadError.self) { try JSONSchema(JSONParser().parse(#"{"$ref":"other.json"}"#)) }
        #expect(throws: JSONSchema.LoadError.self) { try JSONSchema(JSONParser().parse(##"{"$ref":"#/$defs/missing"}"##)) }
        #expect(throws: JSONSchema.LoadError.self) { try RecordKind.schema("nope") }
    }
}
