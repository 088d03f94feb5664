import MISchemas

/// The record kinds that flow between stages, each documented by a schema in schemas/.
public enum RecordKind {
    public static var all: [String] { EmbeddedSchemas.kinds }

    /// Loads the compiled-in schema of `kind`.
    public static func schema(_ kind: String) throws(JSONSchema.LoadError) -> JSONSchema {
        guard let bytes = EmbeddedSchemas.bytes(for: kind) else {
            throw JSONSchema.LoadError(description: "unknown record kind '\(kind)' (known: \(all.joined(separator: ", ")))")
        }
        let json: JSONValue
        do { json = try JSONParser().parse(bytes) } catch {
            throw JSONSchema.LoadError(description: "schema '\(kind)' is not valid JSON: \(error.message)")
        }
        return try JSONSchema(json)
    }
}
