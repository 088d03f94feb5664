#if canImport(Glibc)
import Glibc
#endif
import MIStream

/// Runs tools as child processes and waits for them. A child's stdout goes to our stderr (the
/// run's stdout carries no data); SIGINT/SIGTERM sent to the run are passed on to the children,
/// which stop between records and leave resumable partial outputs.
enum Subprocess {
    enum Outcome: Equatable { case exited(Int32), signaled(Int32) }

    static func run(_ executable: String, _ arguments: [String]) throws(RunError) -> Outcome {
        try wait([start(executable, arguments)])[0]
    }

    /// Starts a child; `environment` entries are added to ours (a variable we already have is kept).
    static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws(RunError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var envp: [UnsafeMutablePointer<CChar>?] = []
        var p = environ
        while let entry = p.pointee { envp.append(strdup(entry)); p += 1 }
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) where getenv(k) == nil { envp.append(strdup("\(k)=\(v)")) }
        envp.append(nil)
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in envp.withUnsafeBufferPointer { e in posix_spawn(&pid, executable, &actions, nil, a.baseAddress!, e.baseAddress!) } }
        guard rc == 0 else { throw RunError("cannot run \(executable): \(String(cString: strerror(rc)))", exitStatus: 69) }
        return pid
    }

    /// Waits for every child, passing an interruption on to those still running.
    static func wait(_ pids: [pid_t]) throws(RunError) -> [Outcome] {
        var outcomes: [Outcome?] = Array(repeating: nil, count: pids.count)
        var forwarded = false
        while outcomes.contains(where: { $0 == nil }) {
            // Checked before waiting too: a signal that arrived between two waits is not lost.
            if Interrupts.requested && !forwarded {
                for (i, p) in pids.enumerated() where outcomes[i] == nil { kill(p, Interrupts.signal) }
                forwarded = true
            }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 {
                guard errno == EINTR else { throw RunError("waitpid: \(String(cString: strerror(errno)))") }
                continue
            }
            guard let i = pids.firstIndex(of: pid) else { continue }
            let signal = status & 0x7f
            outcomes[i] = signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
        }
        return outcomes.map { $0! }
    }
}
