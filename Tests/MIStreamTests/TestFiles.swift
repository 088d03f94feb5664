import Foundation
import MIStream

/// A fresh temporary directory per test, removed at the end.
final class TempDir {
    let url: URL

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("mi-tests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path(name)
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }

    func read(_ name: String) -> [UInt8] { [UInt8](FileManager.default.contents(atPath: path(name)) ?? Data()) }
}

/// gzip-compresses `text` into one member with our writer.
func gzipMember(_ text: String) throws -> [UInt8] {
    let dir = TempDir()
    let sink = CollectingSink()
    let gz = try GzipSink(sink, name: "mem")
    let bytes = Array(text.utf8)
    try gz.write(bytes, count: bytes.count)
    try gz.endMember(force: true)
    _ = dir
    return sink.bytes
}

final class CollectingSink: ByteSink {
    var bytes: [UInt8] = []
    func write(_ b: UnsafeRawBufferPointer) throws(StreamError) { bytes.append(contentsOf: b) }
}

/// Reads every record of `paths`, returning the objects or the error that stopped the read.
func readAll(_ paths: [String], options: ReadOptions = ReadOptions(), policy: BadRecordPolicy = .failFast()) -> (
    records: [JSONObject], error: StreamError?, reader: RecordReader
) {
    let reader = RecordReader(paths: paths, options: options, badRecords: policy)
    var out: [JSONObject] = []
    do {
        while let r = try reader.next() { out.append(r.object) }
    } catch {
        return (out, error, reader)
    }
    return (out, nil, reader)
}

func object(_ text: String) -> JSONObject {
    guard case let .object(o)? = try? JSONParser().parse(text) else { fatalError("not an object: \(text)") }
    return o
}

/// Repository root, for fixtures and schemas.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
