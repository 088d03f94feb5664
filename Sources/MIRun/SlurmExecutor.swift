import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a step's tool invocations on Slurm (`executor: slurm`): one job array, task K running
/// invocation K (shard K). Each task's script records its exit status in a file beside its log, so
/// the run needs no accounting database: a task that has left the queue with status 0 is done; any
/// other status, or none (cancelled, timed out, its node lost), gets it resubmitted at once, alone
/// and with `--resume`, up to `retries` times; then the step fails naming the task's log. The ids
/// of submitted jobs are kept in the step's directory until the step ends, so an interrupted
/// mi-run cancels what it left queued before it resubmits. Everything lives under
/// `<run>/slurm/<step>/`, which every node must see.
public struct SlurmExecutor {
    let settings: RunConfig.Slurm
    let directory: String

    /// One task: its id (the shard it runs), its command line, and the one a resubmission runs.
    struct Task {
        var id: Int
        var arguments: [String]
        var retry: [String]
    }

    /// A submitted array and its tasks not yet seen to end.
    struct Job {
        var id: String
        var tasks: Set<Int>
    }

    func run(step: String, label: String, tasks: [Task], environment: [String: String]) throws(RunError) {
        let dir = directory + "/" + step.replacingAll("/", with: "-")
        try Files.makeDirectories(dir)
        try cancelLeftovers(dir)
        let byID = Dictionary(tasks.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var attempts: [Int: Int] = [:], submissions = 0
        var active: [Job] = []
        func submit(_ ids: [Int]) throws(RunError) {
            submissions += 1
            for t in ids {
                attempts[t, default: 0] += 1
                Files.remove(exitFile(dir, t))
            }
            let script = dir + "/tasks-\(submissions).sh"
            let commands = ids.map { (task: $0, arguments: attempts[$0] == 1 ? byID[$0]!.arguments : byID[$0]!.retry) }
            try write(Self.script(commands, environment: environment, exitFiles: dir), to: script)
            let job = try self.submit(script, tasks: ids, dir: dir, name: "mi-run:" + step)
            Log.info("\(label): Slurm job \(job), task\(ids.count == 1 ? "" : "s") \(Self.list(ids))")
            active.append(Job(id: job, tasks: Set(ids)))
        }
        try submit(tasks.map(\.id))
        var errors = 0
        while !active.isEmpty {
            sleep(seconds: settings.poll)
            if Interrupts.requested { try cancel(active.map(\.id)) }
            // Each task is looked at as soon as it has left the queue; a failed one is resubmitted
            // at once, without waiting for the rest of its array.
            var failed: [(task: Int, status: Int32?)] = []
            for j in active.indices {
                guard let left = try queuedTasks(active[j].id) else {
                    errors += 1
                    if errors >= 30 { throw RunError("squeue failed 30 times in a row while waiting for Slurm job \(active[j].id)", exitStatus: 69) }
                    continue
                }
                errors = 0
                for t in active[j].tasks.subtracting(left).sorted() {
                    active[j].tasks.remove(t)
                    let status = exitStatus(dir, t)
                    if status != 0 { failed.append((t, status)) }
                }
            }
            active.removeAll { $0.tasks.isEmpty }
            guard !failed.isEmpty else { continue }
            func why(_ status: Int32?) -> String { status.map { "exit \($0)" } ?? "ended without an exit status (cancelled, timed out or killed)" }
            if let last = failed.first(where: { attempts[$0.task]! > settings.retries }) {
                // Out of retries: the step fails; the other tasks are stopped (resumable).
                try cancelAndWait(active.map(\.id))
                let n = attempts[last.task]!
                throw RunError(
                    "\(label): Slurm task \(last.task) (\(why(last.status))) after \(n) attempt\(n == 1 ? "" : "s"); log: \(logFile(dir, last.task)); "
                        + "rerun mi-run to continue from this step", exitStatus: last.status ?? 70)
            }
            let what = failed.map { "task \($0.task) (\(why($0.status)))" }.joined(separator: ", ")
            let next = failed.map { attempts[$0.task]! + 1 }.max()!
            Log.warning("\(label): Slurm \(what); resubmitting (attempt \(next) of \(settings.retries + 1))")
            try submit(failed.map(\.task))
        }
        Files.remove(dir + "/jobs")
    }

    /// Cancels `jobs` on an interruption (their tasks get SIGTERM and leave resumable partial
    /// outputs), waits for them to go, and stops the run as a stopped tool would: 130 after SIGINT, 75 otherwise.
    func cancel(_ jobs: [String]) throws(RunError) -> Never {
        try cancelAndWait(jobs)
        throw RunError(
            "Slurm job\(jobs.count == 1 ? "" : "s") \(jobs.joined(separator: ", ")) cancelled on signal \(Interrupts.signal); "
                + "rerun mi-run to continue from this step", exitStatus: Interrupts.signal == SIGINT ? 130 : 75)
    }

    func exitFile(_ dir: String, _ task: Int) -> String { dir + "/task-\(task).exit" }

    /// The status task `task` wrote. A file written on another node can show up here a little
    /// after the task has left the queue (a shared filesystem's caching), so a missing one is
    /// looked for again for a few seconds before the task counts as killed.
    func exitStatus(_ dir: String, _ task: Int) -> Int32? {
        for wait in [0, 1, 2, 4] {
            if wait > 0 { usleep(UInt32(wait) * 1_000_000) }
            if let text = Files.read(exitFile(dir, task)) { return Int32(text.trimmingWhitespaceAtEnds()) }
        }
        return nil
    }
    func logFile(_ dir: String, _ task: Int) -> String { dir + "/task-\(task).log" }

    /// The batch script: task K's command line, our environment entries where the job has none,
    /// OpenBLAS on the task's CPUs, and the exit status written (atomically) where we read it.
    public static func script(_ commands: [(task: Int, arguments: [String])], environment: [String: String], exitFiles dir: String) -> String {
        var s = "#!/bin/bash\n# Written by mi-run: one command per array task.\ncase \"$SLURM_ARRAY_TASK_ID\" in\n"
        for (task, arguments) in commands { s += "\(task)) set -- \(arguments.map(quoted).joined(separator: " ")) ;;\n" }
        s += "*) echo \"mi-run: no command for task $SLURM_ARRAY_TASK_ID\" >&2; exit 64 ;;\nesac\n"
        s += "export OPENBLAS_NUM_THREADS=\"${OPENBLAS_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}\"\n"
        for (k, v) in environment.sorted(by: { $0.key < $1.key }) where k != "OPENBLAS_NUM_THREADS" {
            s += "export \(k)=\"${\(k):-\(quoted(v))}\"\n"
        }
        let exit = quoted(dir) + "/task-$SLURM_ARRAY_TASK_ID.exit"
        s += "\"$@\" 1>&2\nstatus=$?\necho \"$status\" > \(exit).tmp && mv -f \(exit).tmp \(exit)\nexit \"$status\"\n"
        return s
    }

    /// `word` as one POSIX shell word.
    public static func quoted(_ word: String) -> String {
        "'" + word.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }

    /// "0-2" for 0, 1, 2; "1,3" otherwise.
    public static func list(_ tasks: [Int]) -> String {
        if tasks.count > 1, tasks == Array(tasks[0]...tasks[tasks.count - 1]) { return "\(tasks[0])-\(tasks[tasks.count - 1])" }
        return tasks.map(String.init).joined(separator: ",")
    }

    func write(_ text: String, to path: String) throws(RunError) {
        do { try OutputFile.write(Array(text.utf8), to: path) } catch { throw RunError("cannot write \(path): \(error)", exitStatus: 74) }
    }

    /// Submits the array; its job id, also appended to the step's `jobs` file.
    func submit(_ script: String, tasks: [Int], dir: String, name: String) throws(RunError) -> String {
        var arguments = [
            "--parsable", "--array=" + Self.list(tasks), "--job-name=" + name, "--output=" + dir + "/task-%a.log", "--open-mode=append",
            "--chdir=" + Files.currentDirectory(),
        ]
        if let p = settings.partition { arguments.append("--partition=" + p) }
        if let t = settings.time { arguments.append("--time=" + t) }
        if let c = settings.cpusPerTask { arguments.append("--cpus-per-task=\(c)") }
        arguments += settings.extra + [script]
        let (status, output) = try Subprocess.capture("sbatch", arguments)
        let id = output.trimmingWhitespaceAtEnds().split(separator: ";").first.map(String.init) ?? ""
        guard status == 0, !id.isEmpty, id.allSatisfy({ $0.isNumber }) else {
            throw RunError("sbatch failed (exit \(status)): \(output.trimmingWhitespaceAtEnds())", exitStatus: 69)
        }
        let jobs = (Files.read(dir + "/jobs") ?? "") + id + "\n"
        try write(jobs, to: dir + "/jobs")
        return id
    }

    /// The array tasks of `job` still queued or running; nil when squeue fails.
    func queuedTasks(_ job: String) throws(RunError) -> Set<Int>? {
        let (status, output) = try Subprocess.capture("squeue", ["--noheader", "--array", "--jobs=" + job, "--format=%K"])
        // A job the controller has already forgotten has no tasks left.
        guard status == 0 else { return output.contains("Invalid job id") ? [] : nil }
        return Set(output.split(separator: "\n").compactMap { Int(String($0).trimmingWhitespaceAtEnds()) })
    }

    /// Cancels the jobs an interrupted run of this step left (their ids in `jobs`) and waits for them.
    func cancelLeftovers(_ dir: String) throws(RunError) {
        guard let text = Files.read(dir + "/jobs") else { return }
        let jobs = text.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        if !jobs.isEmpty {
            Log.info("cancelling Slurm job\(jobs.count == 1 ? "" : "s") \(jobs.joined(separator: ", ")) of an earlier run of this step")
            try cancelAndWait(jobs, seconds: 300)
        }
        Files.remove(dir + "/jobs")
    }

    /// Cancels `jobs` (their tasks get SIGTERM, then SIGKILL after the cluster's KillWait) and
    /// waits until none is queued.
    func cancelAndWait(_ jobs: [String], seconds: Double = 120) throws(RunError) {
        guard !jobs.isEmpty else { return }
        _ = try? Subprocess.capture("scancel", jobs)
        var waited = 0.0
        while true {
            var left = false
            for job in jobs where try queuedTasks(job) != [] { left = true }
            if !left { return }
            guard waited < seconds else { throw RunError("Slurm jobs \(jobs.joined(separator: ", ")) still queued after cancelling", exitStatus: 69) }
            usleep(1_000_000)
            waited += 1
        }
    }

    func sleep(seconds: Double) {
        // In short naps, so an interruption is seen at once.
        var left = seconds
        while left > 0, !Interrupts.requested {
            usleep(UInt32(min(left, 0.1) * 1e6))
            left -= 0.1
        }
    }
}
