/// The JSON Schemas of schemas/, compiled into the binary so a copied executable still validates.
public enum EmbeddedSchemas {
    /// Record kinds in pipeline order.
    public static let kinds = ["seed", "instruction", "response", "scored", "pair", "metrics"]

    /// The schema text of `kind`, or nil for an unknown kind.
    public static func bytes(for kind: String) -> [UInt8]? {
        switch kind {
        case "seed": return PackageResources.seed_schema_json
        case "instruction": return PackageResources.instruction_schema_json
        case "response": return PackageResources.response_schema_json
        case "scored": return PackageResources.scored_schema_json
        case "pair": return PackageResources.pair_schema_json
        case "metrics": return PackageResources.metrics_schema_json
        default: return nil
        }
    }
}
