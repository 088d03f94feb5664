/// A JSON Schema (draft 2020-12) validator for the subset of keywords our schemas use. A schema
/// using any other validation keyword is refused when it is loaded, so nothing is silently unchecked.
public final class JSONSchema {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    final class Node {
        var alwaysValid = false
        var neverValid = false
        var types: [String]?
        var required: [String] = []
        var properties: [(String, Node)] = []
        var additionalProperties: Node?
        var items: Node?
        var enumValues: [JSONValue]?
        var constValue: JSONValue?
        var minimum: Double?, maximum: Double?, exclusiveMinimum: Double?, exclusiveMaximum: Double?
        var minLength: Int?, maxLength: Int?, minItems: Int?, maxItems: Int?
        var anyOf: [Node] = [], oneOf: [Node] = [], allOf: [Node] = []
        var not: Node?
        var ref: String?
    }

    static let annotations: Set<String> = [
        "$schema", "$id", "title", "description", "examples", "default", "$comment", "deprecated", "readOnly", "writeOnly",
    ]

    let root: Node
    var definitions: [String: Node] = [:]

    public init(_ json: JSONValue) throws(LoadError) {
        root = Node()
        if case let .object(o) = json, case let .object(defs)? = o["$defs"] {
            for m in defs.members { definitions[m.key] = Node() }
            for m in defs.members { try compile(m.value, into: definitions[m.key]!, path: "/$defs/\(m.key)") }
        }
        try compile(json, into: root, path: "")
        try checkRefs(root, seen: [])
    }

    private func compile(_ json: JSONValue, path: String) throws(LoadError) -> Node {
        let node = Node()
        try compile(json, into: node, path: path)
        return node
    }

    private func compile(_ json: JSONValue, into node: Node, path: String) throws(LoadError) {
        switch json {
        case .bool(true):
            node.alwaysValid = true
            return
        case .bool(false):
            node.neverValid = true
            return
        case .object: break
        default: throw LoadError(description: "schema at '\(path)' must be an object or a boolean")
        }
        guard case let .object(o) = json else { return }
        func number(_ v: JSONValue, _ k: String) throws(LoadError) -> Double {
            guard case let .number(n) = v else { throw LoadError(description: "'\(path)/\(k)' must be a number") }
            return n.double
        }
        func count(_ v: JSONValue, _ k: String) throws(LoadError) -> Int {
            guard case let .number(n) = v, let i = n.int, i >= 0 else {
                throw LoadError(description: "'\(path)/\(k)' must be a non-negative integer")
            }
            return i
        }
        func list(_ v: JSONValue, _ k: String) throws(LoadError) -> [Node] {
            guard case let .array(a) = v, !a.isEmpty else { throw LoadError(description: "'\(path)/\(k)' must be a non-empty array") }
            var nodes: [Node] = []
            for (i, s) in a.enumerated() { nodes.append(try compile(s, path: "\(path)/\(k)/\(i)")) }
            return nodes
        }
        for m in o.members {
            let k = m.key, v = m.value
            switch k {
            case _ where Self.annotations.contains(k): continue
            case "$defs": if !path.isEmpty { throw LoadError(description: "'\(path)': $defs only at the top level") }
            case "type":
                switch v {
                case let .string(t): node.types = [t]
                case let .array(a): node.types = a.compactMap { if case let .string(t) = $0 { return t } else { return nil } }
                default: throw LoadError(description: "'\(path)/type' must be a string or an array")
                }
                let known: Set = ["null", "boolean", "integer", "number", "string", "array", "object"]
                if let bad = node.types!.first(where: { !known.contains($0) }) { throw LoadError(description: "'\(path)/type': unknown type \(bad)") }
            case "required":
                guard case let .array(a) = v else { throw LoadError(description: "'\(path)/required' must be an array") }
                node.required = a.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
            case "properties":
                guard case let .object(props) = v else { throw LoadError(description: "'\(path)/properties' must be an object") }
                for p in props.members { node.properties.append((p.key, try compile(p.value, path: "\(path)/properties/\(p.key)"))) }
            case "additionalProperties": node.additionalProperties = try compile(v, path: "\(path)/additionalProperties")
            case "items": node.items = try compile(v, path: "\(path)/items")
            case "enum":
                guard case let .array(a) = v else { throw LoadError(description: "'\(path)/enum' must be an array") }
                node.enumValues = a
            case "const": node.constValue = v
            case "minimum": node.minimum = try number(v, k)
            case "maximum": node.maximum = try number(v, k)
            case "exclusiveMinimum": node.exclusiveMinimum = try number(v, k)
            case "exclusiveMaximum": node.exclusiveMaximum = try number(v, k)
            case "minLength": node.minLength = try count(v, k)
            case "maxLength": node.maxLength = try count(v, k)
            case "minItems": node.minItems = try count(v, k)
            case "maxItems": node.maxItems = try count(v, k)
            case "anyOf": node.anyOf = try list(v, k)
            case "oneOf": node.oneOf = try list(v, k)
            case "allOf": node.allOf = try list(v, k)
            case "not": node.not = try compile(v, path: "\(path)/not")
            case "$ref":
                guard case let .string(r) = v, r.hasPrefix("#/$defs/") else {
                    throw LoadError(description: "'\(path)/$ref': only local references '#/$defs/NAME' are supported")
                }
                node.ref = String(r.dropFirst("#/$defs/".count))
            default:
                throw LoadError(description: "'\(path)': unsupported keyword '\(k)'")
            }
        }
    }

    private func checkRefs(_ node: Node, seen: Set<ObjectIdentifier>) throws(LoadError) {
        if seen.contains(ObjectIdentifier(node)) { return }
        var seen = seen
        seen.insert(ObjectIdentifier(node))
        if let r = node.ref, definitions[r] == nil { throw LoadError(description: "$ref to undefined '#/$defs/\(r)'") }
        var children = node.properties.map(\.1) + node.anyOf + node.oneOf + node.allOf
        children += [node.additionalProperties, node.items, node.not].compactMap { $0 }
        for c in children { try checkRefs(c, seen: seen) }
        for d in definitions.values where !seen.contains(ObjectIdentifier(d)) { try checkRefs(d, seen: seen) }
    }

    /// The first violation as "at /path: problem", or nil when the value is valid.
    public func firstViolation(_ value: JSONValue) -> String? {
        check(value, root, path: "", depth: 0)
    }

    private func describe(_ v: JSONValue) -> String {
        let text = JSONWriter.string(v)
        return text.count > 40 ? String(text.prefix(37)) + "..." : text
    }

    private func check(_ v: JSONValue, _ node: Node, path: String, depth: Int) -> String? {
        let at = path.isEmpty ? "record" : "field \(path)"
        if depth > 64 { return "\(at): schema recursion too deep" }
        if node.alwaysValid { return nil }
        if node.neverValid { return "\(at): not allowed" }
        if let r = node.ref, let target = definitions[r], let e = check(v, target, path: path, depth: depth + 1) { return e }
        if let types = node.types {
            let t = v.typeName
            let ok = types.contains(t) || (t == "integer" && types.contains("number"))
            if !ok { return "\(at): expected \(types.joined(separator: " or ")), got \(t)" }
        }
        if let values = node.enumValues, !values.contains(v) {
            return "\(at): \(describe(v)) is not one of \(values.map(describe).joined(separator: ", "))"
        }
        if let c = node.constValue, c != v { return "\(at): must be \(describe(c))" }
        switch v {
        case let .number(n):
            let d = n.double
            if let m = node.minimum, d < m { return "\(at): \(n) is below the minimum \(m)" }
            if let m = node.maximum, d > m { return "\(at): \(n) is above the maximum \(m)" }
            if let m = node.exclusiveMinimum, d <= m { return "\(at): \(n) must be greater than \(m)" }
            if let m = node.exclusiveMaximum, d >= m { return "\(at): \(n) must be less than \(m)" }
        case let .string(s):
            if node.minLength != nil || node.maxLength != nil {
                let length = s.unicodeScalars.count
                if let m = node.minLength, length < m { return "\(at): string shorter than \(m) characters" }
                if let m = node.maxLength, length > m { return "\(at): string longer than \(m) characters" }
            }
        case let .array(items):
            if let m = node.minItems, items.count < m { return "\(at): fewer than \(m) items" }
            if let m = node.maxItems, items.count > m { return "\(at): more than \(m) items" }
            if let itemNode = node.items {
                for (i, item) in items.enumerated() {
                    if let e = check(item, itemNode, path: "\(path)/\(i)", depth: depth + 1) { return e }
                }
            }
        case let .object(o):
            for key in node.required where o[key] == nil {
                return "\(path.isEmpty ? "" : "\(at): ")missing required field \"\(key)\""
            }
            for m in o.members {
                if let (_, p) = node.properties.first(where: { $0.0 == m.key }) {
                    if let e = check(m.value, p, path: "\(path)/\(m.key)", depth: depth + 1) { return e }
                } else if let extra = node.additionalProperties {
                    if extra.neverValid { return "\(at): unexpected field \"\(m.key)\"" }
                    if let e = check(m.value, extra, path: "\(path)/\(m.key)", depth: depth + 1) { return e }
                }
            }
        default: break
        }
        for sub in node.allOf { if let e = check(v, sub, path: path, depth: depth + 1) { return e } }
        if !node.anyOf.isEmpty {
            var firstError: String?
            var matched = false
            for sub in node.anyOf {
                if let e = check(v, sub, path: path, depth: depth + 1) {
                    firstError = firstError ?? e
                } else {
                    matched = true
                    break
                }
            }
            if !matched { return "\(at): matches none of the allowed forms (\(firstError ?? ""))" }
        }
        if !node.oneOf.isEmpty {
            let matches = node.oneOf.filter { check(v, $0, path: path, depth: depth + 1) == nil }.count
            if matches != 1 { return "\(at): must match exactly one allowed form, matches \(matches)" }
        }
        if let n = node.not, check(v, n, path: path, depth: depth + 1) == nil { return "\(at): matches a form that is not allowed" }
        return nil
    }
}
