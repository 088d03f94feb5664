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
    /// Its stdout goes to our stderr, or with `output` its stdout and stderr go to that descriptor
    /// and its stdin is /dev/null. An `executable` without a "/" is looked up in PATH.
    static func start(_ executable: String, _ arguments: [String], environment: [String: String] = [:], output: Int32? = nil) throws(RunError)
        -> pid_t
    {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let output {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, output, 1)
            posix_spawn_file_actions_adddup2(&actions, output, 2)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
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
            envp.withUnsafeBufferPointer { e in
                executable.contains("/")
                    ? posix_spawn(&pid, executable, &actions, &attributes, a.baseAddress!, e.baseAddress!)
                    : posix_spawnp(&pid, executable, &actions, &attributes, a.baseAddress!, e.baseAddress!)
            }
        }
        guard rc == 0 else { throw RunError("cannot run \(executable): \(String(cString: strerror(rc)))", exitStatus: ExitStatus.noInput.rawValue) }
        return pid
    }

    /// Runs `program` (looked up in PATH) to its end; its exit status (128 + N for signal N) and
    /// what it wrote to stdout and stderr. For the short Slurm commands (sbatch, squeue, scancel).
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
        let pid = try start(program, arguments, output: fd)
        var status: Int32 = 0
        // This child alone, and no interruption passed on: scancel must still run after a signal.
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw RunError("waitpid: \(String(cString: strerror(errno)))") }
        }
        let code: Int32
        switch outcome(status) {
        case let .exited(c): code = c
        case let .signaled(sig): code = 128 + sig
        }
        return (code, Files.read(path) ?? "")
    }

    /// What a wait status says.
    static func outcome(_ status: Int32) -> Outcome {
        let signal = status & 0x7f
        return signal == 0 ? .exited((status >> 8) & 0xff) : .signaled(signal)
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
            outcomes[i] = outcome(status)
        }
        return outcomes.map { $0! }
    }
}
