#if canImport(Glibc)
import Glibc
#endif
import MIStream

/// Runs one tool as a child process and waits for it. The child's stdout goes to our stderr (the
/// run's stdout carries no data); SIGINT/SIGTERM sent to the run are passed on to the child, which
/// stops between records and leaves a resumable partial output.
enum Subprocess {
    enum Outcome: Equatable { case exited(Int32), signaled(Int32) }

    static func run(_ executable: String, _ arguments: [String]) throws(RunError) -> Outcome {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { posix_spawn(&pid, executable, &actions, nil, $0.baseAddress!, environ) }
        guard rc == 0 else { throw RunError("cannot run \(executable): \(String(cString: strerror(rc)))", exitStatus: 69) }
        var status: Int32 = 0
        var forwarded = false
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RunError("waitpid: \(String(cString: strerror(errno)))") }
            if Interrupts.requested && !forwarded {
                kill(pid, Interrupts.signal)
                forwarded = true
            }
        }
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
    }
}
