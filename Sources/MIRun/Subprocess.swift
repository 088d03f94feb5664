import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Runs tools as child processes and waits for them. A child's stdout goes to our stderr (the
/// run's stdout carries no data); SIGINT/SIGTERM sent to the run are passed on to the children,
/// which stop between records and leave resumable partial outputs.
enum Subprocess {
    enum Outcome: Equatable { case exited(Int32), signaled(Int32) }

    /// Starts a child; `environment` entries are added to ours (a variable we already have is kept).
    static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws(RunError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, 2, 1)
        // The child starts with default handling of SIGPIPE, SIGINT and SIGTERM (we ignore or catch them).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGPIPE, SIGINT, SIGTERM] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var envp: [UnsafeMutablePointer<CChar>?] = []
        var p = environ
        while let entry = p.pointee {
            envp.append(strdup(entry))
            p += 1
        }
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) where getenv(k) == nil { envp.append(strdup("\(k)=\(v)")) }
        envp.append(nil)
        defer { for e in envp { free(e) } }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { a in
            envp.withUnsafeBufferPointer { e in posix_spawn(&pid, executable, &actions, &attributes, a.baseAddress!, e.baseAddress!) }
        }
        guard rc == 0 else { throw RunError("cannot run \(executable): \(String(cString: strerror(rc)))", exitStatus: ExitStatus.noInput.rawValue) }
        return pid
    }

    /// Runs `program` (looked up in PATH) to its end; its exit status and what it wrote to stdout
    /// and stderr. For the short Slurm commands (sbatch, squeue, scancel).
    static func capture(_ program: String, _ arguments: [String]) throws(RunError) -> (status: Int32, output: String) {
        let tmp = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((tmp + "/mi-run-capture-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw RunError("cannot make a temporary file: \(String(cString: strerror(errno)))", exitStatus: 74) }
        let path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        defer {
            close(fd)
            unlink(path)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([program] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = argv.withUnsafeBufferPointer { posix_spawnp(&pid, program, &actions, nil, $0.baseAddress!, environ) }
        guard rc == 0 else { throw RunError("cannot run \(program): \(String(cString: strerror(rc)))", exitStatus: 69) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RunError("waitpid: \(String(cString: strerror(errno)))") }
        }
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, Files.read(path) ?? "")
    }

    /// Waits for every child, passing an interruption on to those still running.
    static func wait(_ pids: [pid_t]) throws(RunError) -> [Outcome] {
        var outcomes: [Outcome?] = Array(repeating: nil, count: pids.count)
        var forwarded = false
        while outcomes.contains(where: { $0 == nil }) {
            if Interrupts.requested && !forwarded {
                for (i, p) in pids.enumerated() where outcomes[i] == nil { kill(p, Interrupts.signal) }
                forwarded = true
            }
            // Polled, so a signal arriving at any moment is passed on within 20 ms.
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == 0 {
                usleep(20_000)
                continue
            }
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
