/// A JSON value as read from a record. Numbers keep the text they were written with, so a record
/// passed through a stage re-emits `1.0`, `1e5` or a 20-digit id exactly as it came in.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The JSON type name, as JSON Schema spells it (integers are reported as "integer").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case let .number(n): return n.isInteger ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A number as its JSON text, validated by the parser or produced from a finite Double/Int.
public struct JSONNumber: Equatable, Sendable, CustomStringConvertible {
    public let text: String

    /// `text` must already be a valid JSON number.
    init(validatedText: String) { text = validatedText }

    public init(_ value: Int) { text = String(value) }

    /// JSON has no NaN or infinity; nil for those.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(), abs(value) < 1e15 {
            text = String(Int64(value))
        } else {
            text = "\(value)"
        }
    }

    public var double: Double { Double(text) ?? .nan }

    /// `x` as a JSON number, or null when it is NaN or infinite (JSON has neither).
    public static func value(_ x: Double) -> JSONValue { JSONNumber(x).map(JSONValue.number) ?? .null }

    /// Mathematically an integer (`3`, `3.0`, `3e2`), as JSON Schema's "integer" type defines it.
    public var isInteger: Bool {
        if !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) { return true }
        let d = double
        return d.isFinite && d == d.rounded()
    }

    /// The value as an Int when it is an integer that fits.
    public var int: Int? {
        if let i = Int(text) { return i }
        let d = double
        guard d.isFinite, d == d.rounded(), abs(d) < 9.0e18 else { return nil }
        return Int(d)
    }

    public var description: String { text }

    public static func == (a: JSONNumber, b: JSONNumber) -> Bool {
        a.text == b.text || a.double == b.double
    }
}

/// An object with its members in input order. Keys are unique (the parser rejects duplicates).
public struct JSONObject: Equatable, Sendable {
    public struct Member: Equatable, Sendable {
        public var key: String
        public var value: JSONValue
    }

    public private(set) var members: [Member]

    public init() { members = [] }

    init(uniqueMembers: [Member]) { members = uniqueMembers }

    /// Builds an object from many members at once (subscript assignment is a linear search).
    /// The keys must be distinct.
    public init(uniqueKeysAndValues pairs: [(String, JSONValue)]) {
        precondition(Set(pairs.map(\.0)).count == pairs.count, "duplicate keys")
        members = pairs.map { Member(key: $0.0, value: $0.1) }
    }

    public var count: Int { members.count }
    public var keys: [String] { members.map(\.key) }

    public subscript(key: String) -> JSONValue? {
        get { members.first(where: { $0.key == key })?.value }
        set {
            if let i = members.firstIndex(where: { $0.key == key }) {
                if let v = newValue { members[i].value = v } else { members.remove(at: i) }
            } else if let v = newValue {
                members.append(Member(key: key, value: v))
            }
        }
    }

    /// Objects are equal when they have the same members, whatever their order.
    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        guard a.count == b.count else { return false }
        return a.members.allSatisfy { m in b[m.key] == m.value }
    }
}

/// A required field that is missing or has the wrong JSON type. No coercion is ever attempted.
public struct FieldError: Error, Equatable, CustomStringConvertible {
    public let field: String
    public let problem: String
    public init(field: String, problem: String) {
        self.field = field
        self.problem = problem
    }
    public var description: String { "field \"\(field)\": \(problem)" }
}

extension JSONObject {
    private func required(_ key: String) throws(FieldError) -> JSONValue {
        guard let v = self[key] else { throw FieldError(field: key, problem: "missing") }
        return v
    }

    private static func wrongType(_ key: String, _ expected: String, _ got: JSONValue) -> FieldError {
        FieldError(field: key, problem: "expected \(expected), got \(got.typeName)")
    }

    public func string(_ key: String) throws(FieldError) -> String {
        let v = try required(key)
        guard case let .string(s) = v else { throw Self.wrongType(key, "string", v) }
        return s
    }

    public func optionalString(_ key: String) throws(FieldError) -> String? {
        guard let v = self[key], v != .null else { return nil }
        guard case let .string(s) = v else { throw Self.wrongType(key, "string", v) }
        return s
    }

    public func double(_ key: String) throws(FieldError) -> Double {
        let v = try required(key)
        guard case let .number(n) = v else { throw Self.wrongType(key, "number", v) }
        // JSON has no infinity: a literal beyond the double range (1e400) is refused, as NaN is.
        guard n.double.isFinite else { throw FieldError(field: key, problem: "\(n.text) is outside the range of a double") }
        return n.double
    }

    public func int(_ key: String) throws(FieldError) -> Int {
        let v = try required(key)
        guard case let .number(n) = v, let i = n.int else { throw Self.wrongType(key, "integer", v) }
        return i
    }

    public func bool(_ key: String) throws(FieldError) -> Bool {
        let v = try required(key)
        guard case let .bool(b) = v else { throw Self.wrongType(key, "boolean", v) }
        return b
    }

    public func object(_ key: String) throws(FieldError) -> JSONObject {
        let v = try required(key)
        guard case let .object(o) = v else { throw Self.wrongType(key, "object", v) }
        return o
    }

    public func array(_ key: String) throws(FieldError) -> [JSONValue] {
        let v = try required(key)
        guard case let .array(a) = v else { throw Self.wrongType(key, "array", v) }
        return a
    }
}
