import Foundation
import MICore
import Testing

/// Fixtures written by Tests/Reference/make_model_fixtures.py.
enum Fixture {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func json(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    /// greedy.json: its prompts as greedy requests of 24 new tokens, and transformers' continuations.
    static func greedy() throws -> (requests: [GenerationRequest], expected: [[Int32]]) {
        let cases = try #require(try json("greedy.json")["cases"] as? [[String: Any]])
        var requests: [GenerationRequest] = []
        var expected: [[Int32]] = []
        for c in cases {
            var p = SamplingParameters()
            p.temperature = 0
            p.maxTokens = 24
            requests.append(GenerationRequest(prompt: try #require(c["prompt_ids"] as? [Int]).map(Int32.init), sampling: p))
            expected.append(try #require(c["new_ids"] as? [Int]).map(Int32.init))
        }
        return (requests, expected)
    }
}

/// The default model, set by `make test` (MI_MODEL); tests that need it are skipped without it.
enum TestModel {
    static let path: String? = {
        guard let p = ProcessInfo.processInfo.environment["MI_MODEL"], FileManager.default.fileExists(atPath: p) else { return nil }
        return p
    }()

    static let available = path != nil

    /// Loaded once for all tests.
    nonisolated(unsafe) static let loaded: LoadedModel? = path.flatMap { try? LoadedModel(path: $0) }
}

extension Tag {
    /// Tests that load the real default model (a second or two each).
    @Tag static var model: Self
}

func hexBytes(_ hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 57 ? c - 48 : (c | 0x20) - 87 }
    while let a = it.next(), let b = it.next() { out.append(nibble(a) << 4 | nibble(b)) }
    return out
}
