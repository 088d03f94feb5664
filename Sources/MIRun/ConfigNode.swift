import Yams

/// A configuration file (YAML, or JSON, which is YAML too) as a tree whose every node knows the
/// line and column it came from, so a bad value is reported where it is written.
public struct ConfigNode: Sendable {
    public enum Kind: Sendable {
        case null
        case bool(Bool)
        /// Numbers and strings alike keep their text: they become command-line arguments.
        case scalar(String)
        case mapping([(key: String, value: ConfigNode)])
        case sequence([ConfigNode])
    }

    public var kind: Kind
    /// "file:line:column".
    public var location: String
    /// Where the key of a mapping's value is written (for "unknown key" errors).
    public var keyLocation: String?

    public init(_ kind: Kind, location: String) {
        self.kind = kind
        self.location = location
    }

    /// Parses a whole document; an empty document is an empty mapping.
    public static func parse(yaml text: String, file: String) throws(ConfigError) -> ConfigNode {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            // Yams' messages carry "line:column: error: ..." followed by a snippet; keep the first line.
            let first = "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
            throw ConfigError("\(file):\(first)")
        }
        guard let root else { return ConfigNode(.mapping([]), location: "\(file):1:1") }
        return try convert(root, file: file)
    }

    static func convert(_ node: Node, file: String) throws(ConfigError) -> ConfigNode {
        let at = "\(file):\(node.mark.map { "\($0.line):\($0.column)" } ?? "?")"
        switch node {
        case let .scalar(s):
            // Only unquoted scalars can be null or booleans: "true" in quotes stays a string.
            if s.style == .plain {
                if node.null != nil { return ConfigNode(.null, location: at) }
                if let b = node.bool { return ConfigNode(.bool(b), location: at) }
            }
            return ConfigNode(.scalar(s.string), location: at)
        case let .mapping(m):
            var members: [(key: String, value: ConfigNode)] = []
            var seen = Set<String>()
            for (k, v) in m {
                guard case let .scalar(ks) = k else { throw ConfigError("\(at): mapping keys must be plain names") }
                let keyAt = "\(file):\(k.mark.map { "\($0.line):\($0.column)" } ?? "?")"
                guard seen.insert(ks.string).inserted else { throw ConfigError("\(keyAt): key \"\(ks.string)\" appears twice") }
                var value = try convert(v, file: file)
                value.keyLocation = keyAt
                members.append((ks.string, value))
            }
            return ConfigNode(.mapping(members), location: at)
        case let .sequence(s):
            var items: [ConfigNode] = []
            for v in s { items.append(try convert(v, file: file)) }
            return ConfigNode(.sequence(items), location: at)
        case .alias:
            throw ConfigError("\(at): aliases are not supported")
        }
    }

    public subscript(key: String) -> ConfigNode? {
        guard case let .mapping(m) = kind else { return nil }
        return m.first { $0.key == key }?.value
    }

    public var members: [(key: String, value: ConfigNode)] {
        if case let .mapping(m) = kind { return m }
        return []
    }

    /// Sets `value` at a dotted path, creating mappings on the way (`--set probing.probe.lr=1e-5`).
    public mutating func set(path: [String], to value: ConfigNode) throws(ConfigError) {
        guard let head = path.first else {
            self = value
            return
        }
        if case .null = kind { kind = .mapping([]) }
        guard case var .mapping(m) = kind else { throw ConfigError("\(location): \(head): the parent is not a mapping") }
        if let i = m.firstIndex(where: { $0.key == head }) {
            try m[i].value.set(path: Array(path.dropFirst()), to: value)
        } else {
            var child = ConfigNode(.mapping([]), location: value.location)
            try child.set(path: Array(path.dropFirst()), to: value)
            m.append((head, child))
        }
        kind = .mapping(m)
    }

    /// A canonical text of the subtree (keys sorted), for fingerprints.
    public var canonical: String {
        switch kind {
        case .null: return "null"
        case let .bool(b): return b ? "true" : "false"
        case let .scalar(s): return "\"" + s.unicodeScalars.map { $0 == "\"" || $0 == "\\" ? "\\\($0)" : "\($0)" }.joined() + "\""
        case let .mapping(m):
            return "{"
                + m.sorted { $0.key < $1.key }.map { ConfigNode(.scalar($0.key), location: "").canonical + ":" + $0.value.canonical }
                .joined(separator: ",") + "}"
        case let .sequence(s): return "[" + s.map(\.canonical).joined(separator: ",") + "]"
        }
    }
}

public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ message: String) { description = message }
}
