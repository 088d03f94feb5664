import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// What the run knows about each step, one small JSON file per step under RUN/.mi-run/steps:
/// its fingerprint (config, inputs, models), whether it finished, and what it reported. A step
/// that is "running" with the same fingerprint was interrupted and is resumed; a different
/// fingerprint means its outputs are stale and the step starts over. A finished step also keeps
/// the wall time of the attempt that finished it (`seconds`, and `resumed` when that attempt
/// continued an interrupted one) and when it finished (`finished_unix`).
struct StepLedger {
    enum Status: String { case running, done }

    struct Entry {
        var step: String
        var fingerprint: String
        var status: Status
        var result: JSONObject
        var seconds: Double? = nil
        var resumed = false
    }

    let directory: String

    init(runDirectory: String) throws(RunError) {
        directory = runDirectory + "/.mi-run/steps"
        try Files.makeDirectories(directory)
    }

    func path(_ step: String) -> String { directory + "/" + step.split(separator: "/").joined(separator: "--") + ".json" }

    func entry(_ step: String) -> Entry? {
        guard Files.exists(path(step)) else { return nil }
        let reader = RecordReader(paths: [path(step)])
        guard let r = try? reader.next(), let fp = try? r.object.string("fingerprint"),
            let s = try? r.object.string("status"), let status = Status(rawValue: s)
        else { return nil }
        return Entry(step: step, fingerprint: fp, status: status, result: (try? r.object.object("result")) ?? JSONObject())
    }

    func record(_ e: Entry) throws(RunError) {
        do {
            let w = try JSONLWriter(path: path(e.step))
            var o = JSONObject(uniqueKeysAndValues: [
                ("step", .string(e.step)), ("fingerprint", .string(e.fingerprint)), ("status", .string(e.status.rawValue)),
                ("result", .object(e.result)),
            ])
            if let seconds = e.seconds, let n = JSONNumber((seconds * 1000).rounded() / 1000) {
                o["seconds"] = .number(n)
                o["resumed"] = .bool(e.resumed)
                o["finished_unix"] = .number(JSONNumber(Int(time(nil))))
            }
            try w.write(o)
            try w.commit()
        } catch { throw RunError("cannot record step \(e.step): \(error)") }
    }
}
