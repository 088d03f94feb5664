import Foundation
import Testing

/// The README's job-array recipe on a real single-node Slurm (scripts/slurm-local.sh starts one in
/// a private directory, installing slurm-wlm and munge with apt when they are missing): sharded
/// mi-respond and mi-probe as `sbatch --array` tasks, merged by mi-merge, equal the unsharded
/// run's files. Skipped, with the reason, where Slurm cannot be had (not root and not installed;
/// `MI_SLURM=0`); where the script cannot start it, the reason is printed and nothing is asserted.
@Suite(.serialized, .enabled(if: SlurmLocal.possible, "MI_SLURM=0, or Slurm is neither installed nor installable here (not root, no apt-get)"))
struct SlurmRecipeTests {
    let records =
        (0..<8).map { #"{"id":"r\#($0)","prompt_id":"p\#($0 / 2)","instruction":"Say \#($0)."}"# }
        .joined(separator: "\n") + "\n"

    /// Submits `command` (with `$SLURM_ARRAY_TASK_ID`) as tasks 0..<n and waits for all of them,
    /// ten minutes at most; on failure the output holds the tasks' logs and the cluster's state.
    func array(_ n: Int, _ command: String, in dir: TempDir) throws -> (Int32, String) {
        let submit = "MI_COMPUTE=f32 timeout -k 10 600 sbatch --wait --array=0-\(n - 1) --cpus-per-task=1 --output=task-%A-%a.log"
        let (status, output) = try SlurmLocal.shell("cd \(dir.path("")) && \(submit) --wrap '\(command)'")
        guard status != 0 else { return (status, output) }
        let (_, state) = try SlurmLocal.shell(
            "cd \(dir.path("")) && tail -n 20 task-*.log; timeout 10 sinfo -R; timeout 10 squeue; tail -n 20 \(SlurmLocal.directory)/log/slurmd.log")
        return (status, output + state)
    }

    @Test func jobArrayShardsMergeToTheUnshardedFiles() throws {
        guard try SlurmLocal.started() else { return }
        defer { SlurmLocal.stop() }
        let dir = TempDir()
        let input = dir.write("in.jsonl", records)
        let refs = dir.write("refs.jsonl", #"{"instruction":"Name a colour.","response":"Blue."}"# + "\n")
        let bin = Executables.directory.path, tiny = SFTCLITests.tiny
        let respond = "\(bin)/mi-respond --quiet --teacher \(tiny) --max-tokens 4 \(input)"
        let (status, output) = try array(3, respond + " --shard $SLURM_ARRAY_TASK_ID/3 -o answered-$SLURM_ARRAY_TASK_ID.jsonl", in: dir)
        #expect(status == 0, "\(output)")
        let whole = try run("mi-respond", ["--teacher", tiny, "--max-tokens", "4", input, "-o", dir.path("whole-answered.jsonl")])
        #expect(whole.status == 0)
        let merged = try run("mi-merge", ["--input", input, "-o", dir.path("answered.jsonl")] + (0..<3).map { dir.path("answered-\($0).jsonl") })
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(dir.read("answered.jsonl") == dir.read("whole-answered.jsonl"))

        let answered = dir.path("answered.jsonl")
        let probe = "\(bin)/mi-probe --quiet --student \(tiny) --reference \(refs) --lr 1e-3 \(answered)"
        let (probeStatus, probeOutput) = try array(2, probe + " --shard $SLURM_ARRAY_TASK_ID/2 -o scored-$SLURM_ARRAY_TASK_ID.jsonl", in: dir)
        #expect(probeStatus == 0, "\(probeOutput)")
        let unsharded = try run("mi-probe", ["--student", tiny, "--reference", refs, "--lr", "1e-3", answered, "-o", dir.path("whole-scored.jsonl")])
        #expect(unsharded.status == 0)
        let scored = try run("mi-merge", ["--input", answered, dir.path("scored-0.jsonl"), dir.path("scored-1.jsonl")])
        #expect(scored.status == 0, "\(scored.stderr)")
        #expect(scored.stdout == dir.read("whole-scored.jsonl"))
    }

    /// mi-run with `executor: slurm`: the probe (3 shards) and every respond step (2 shards) as job
    /// arrays give the files of a local run with the same shard counts; a task killed mid-run is
    /// resubmitted and continues to the same files; a task that keeps failing fails its step,
    /// naming its log, with its exit status.
    @Test func runOnSlurmEqualsTheLocalRun() throws {
        guard try SlurmLocal.started() else { return }
        defer { SlurmLocal.stop() }
        let env = ["SLURM_CONF": SlurmLocal.directory + "/slurm.conf"]
        let shards = "probe_shards: 3\nrespond_shards: 2\n"
        func setUp(_ extra: String) throws -> TempDir {
            let dir = TempDir()
            let config = try RunCLITests().setUp(dir, rounds: 1)
            try (try String(contentsOfFile: config, encoding: .utf8) + "\n" + shards + extra).write(toFile: config, atomically: true, encoding: .utf8)
            return dir
        }
        let local = try setUp("")
        let a = try run("mi-run", ["--config", local.path("config.yaml")], environment: env)
        #expect(a.status == 0, "\(a.stderr)")
        // On Slurm, shard 1's first probe task is killed (SIGKILL, as a lost node would end it) once
        // its output is open, and shard 2's first sleeps: mi-run resubmits shard 1 at once, and is
        // stopped (SIGTERM) when shards 0 and 1 are done, which cancels shard 2's job.
        let probe = Executables.url("mi-probe").path
        let onSlurm = try setUp("executor: slurm\nslurm: {poll: 0.2}\n")
        let flaky = onSlurm.write(
            "flaky-probe.sh",
            """
            #!/bin/bash
            here=$(dirname "$0")
            case " $* " in
            *" --shard 1/3 "*)
                if mkdir "$here/killed-once" 2>/dev/null; then
                    out=""; prev=""; for a in "$@"; do [ "$prev" = "-o" ] && out="$a"; prev="$a"; done
                    \(probe) "$@" & tool=$!
                    for _ in $(seq 1 600); do [ -e "$out.partial" ] && break; kill -0 $tool 2>/dev/null || break; sleep 0.05; done
                    kill -9 $tool; kill -9 $$
                fi ;;
            *" --shard 2/3 "*) mkdir "$here/slept-once" 2>/dev/null && sleep 600 ;;
            esac
            exec \(probe) "$@"
            """)
        chmod(flaky, 0o755)
        try
            (try String(contentsOfFile: onSlurm.path("config.yaml"), encoding: .utf8).replacingOccurrences(
                of: "commands:\n", with: "commands:\n  mi-probe: flaky-probe.sh\n")).write(
                toFile: onSlurm.path("config.yaml"), atomically: true, encoding: .utf8)
        // Ready when shards 0 and 1 are done, shard 1 by its resubmitted task (its first task may
        // commit its file before the kill lands, when the probe outruns the script's polling), and
        // shard 2's first task is sleeping (it may wait for a free CPU).
        let (stopped, stoppedLog) = try Self.runStopped(onSlurm, environment: env) {
            let retried = (try? String(contentsOfFile: onSlurm.path("run/slurm/round-1-probe/task-1.exit"), encoding: .utf8)) == "0\n"
            return retried && onSlurm.exists("run/slurm/round-1-probe/tasks-2.sh") && onSlurm.exists("slept-once")
                && ["0", "1"].allSatisfy { onSlurm.exists("run/round-1/scored-shard-\($0)-of-3.jsonl.gz") }
        }
        #expect(stopped == 75, "\(stoppedLog)")
        #expect(stoppedLog.contains("warmup/respond (2 × mi-respond): Slurm job"), "\(stoppedLog)")
        #expect(stoppedLog.contains("round-1/probe (3 × mi-probe): Slurm job"), "\(stoppedLog)")
        #expect(stoppedLog.contains("Slurm task 1 (exit 137); resubmitting (attempt 2 of 3)"), "\(stoppedLog)")
        #expect(stoppedLog.contains("cancelled on signal 15"), "\(stoppedLog)")
        let retried = (try? String(contentsOfFile: onSlurm.path("run/slurm/round-1-probe/tasks-2.sh"), encoding: .utf8)) ?? ""
        #expect(retried.contains("1) set --") && retried.contains("'--resume'") && !retried.contains("2) set --"), "\(retried)")
        let (_, queue) = try SlurmLocal.shell("squeue --noheader")
        #expect(queue.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(queue)")
        // The next run resubmits shard 2 alone and ends with the local run's files.
        let b = try Self.runOnSlurm(onSlurm)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stderr.contains("round-1/probe (mi-probe): Slurm job") && b.stderr.contains(", task 2\n"), "\(b.stderr)")
        #expect(b.stderr.contains("round-1/baseline-respond (2 × mi-respond): Slurm job"), "\(b.stderr)")
        Self.expectSameOutputs(local, onSlurm)

        // A task that fails every time fails the step after the retries, naming its log; with
        // serial_steps: slurm the steps before it ran as one job each.
        let failing = try setUp("executor: slurm\nslurm: {poll: 0.2, retries: 1, serial_steps: slurm}\n")
        let refuser = failing.write(
            "refuse.sh", "#!/bin/bash\ncase \" $* \" in *\" --shard 0/3 \"*) echo 'shard 0 refuses' >&2; exit 3 ;; esac\nexec \(probe) \"$@\"\n")
        chmod(refuser, 0o755)
        try
            (try String(contentsOfFile: failing.path("config.yaml"), encoding: .utf8).replacingOccurrences(
                of: "commands:\n", with: "commands:\n  mi-probe: refuse.sh\n")).write(
                toFile: failing.path("config.yaml"), atomically: true, encoding: .utf8)
        let d = try Self.runOnSlurm(failing)
        #expect(d.status == 3, "\(d.stderr)")
        let log = failing.path("run/slurm/round-1-probe/task-0.log")
        #expect(d.stderr.contains("round-1/probe (3 × mi-probe): Slurm task 0 (exit 3) after 2 attempts; log: "), "\(d.stderr)")
        #expect(d.stderr.contains("task-0.log"))
        for step in ["warmup/generate (mi-generate)", "warmup/dedupe (mi-dedupe)", "warmup/sft (mi-sft)", "round-1/probe-respond (2 × mi-respond)"] {
            #expect(d.stderr.contains(step + ": Slurm job"), "\(step)")
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.components(separatedBy: "shard 0 refuses").count == 3, "\(text)")
    }

    /// mi-run on `dir`'s config, fifteen minutes at most (a cluster that stops running jobs must
    /// not hold the suite); its exit status and stderr.
    static func runOnSlurm(_ dir: TempDir) throws -> (status: Int32, stderr: String) {
        try SlurmLocal.shell("timeout -k 10 900 \(Executables.url("mi-run").path) --config \(dir.path("config.yaml"))")
    }

    /// Starts mi-run on `dir`'s config, sends it SIGTERM once `ready` holds (five minutes at most)
    /// and waits for it; its exit status and stderr.
    static func runStopped(_ dir: TempDir, environment: [String: String], ready: () -> Bool) throws -> (Int32, String) {
        let p = Process()
        p.executableURL = Executables.url("mi-run")
        p.arguments = ["--config", dir.path("config.yaml")]
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let log = dir.path("mi-run.stderr")
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(300)
        while p.isRunning, !ready(), Date() < deadline { usleep(100_000) }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        return (p.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    /// Every file of `b`'s run directory equals `a`'s, but mi-run's own records (ledger, report,
    /// Slurm logs), which hold times and paths.
    static func expectSameOutputs(_ a: TempDir, _ b: TempDir) {
        let root = a.path("run")
        let files = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? []).filter {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: root + "/" + $0, isDirectory: &isDir)
            return !isDir.boolValue && !$0.hasPrefix(".mi-run") && !$0.hasPrefix("slurm/") && !Self.ownRecords.contains($0)
        }
        #expect(files.count > 20, "\(files)")
        // Training metrics carry each step's wall time, and checkpoints name their base model by path.
        func normalized(_ dir: TempDir, _ f: String) -> Data? {
            guard let data = FileManager.default.contents(atPath: dir.path("run/" + f)) else { return nil }
            guard f.hasSuffix(".json") || f.hasSuffix("metrics.jsonl") else { return data }
            let text = String(decoding: data, as: UTF8.self).replacingOccurrences(of: dir.path(""), with: "DIR/")
                .replacingOccurrences(of: #","elapsed_s":[-0-9.eE+]+"#, with: "", options: .regularExpression)
            return Data(text.utf8)
        }
        for f in files.sorted() { #expect(normalized(a, f) == normalized(b, f), "\(f) differs") }
    }

    static let ownRecords: Set<String> = ["report.html", "summary.md", "result.json"]
}

/// One single-node Slurm for the suite, started on first use.
enum SlurmLocal {
    static let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mi-slurm-\(getpid())").path
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/slurm-local.sh").path
    /// Whether a single-node Slurm can be had here: installed, or installable (root, apt).
    static let possible: Bool =
        ProcessInfo.processInfo.environment["MI_SLURM"] != "0"
        && (getuid() == 0 || FileManager.default.isExecutableFile(atPath: "/usr/sbin/slurmctld"))
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get")

    /// Starts the cluster (installing the packages if needed); its output on failure.
    static func start() throws -> String? {
        // Installing the packages takes minutes at most; nothing here may wait forever.
        let (status, output) = try shell("timeout -k 10 1800 \(script) start \(directory)")
        return status == 0 ? nil : output
    }

    /// Starts the cluster; where the packages cannot be installed or the daemons cannot start,
    /// says so (the tests are then not run here, which the log shows) and returns false.
    static func started() throws -> Bool {
        guard let failure = try start() else { return true }
        print("SlurmRecipeTests: not run: scripts/slurm-local.sh start failed: \(failure)")
        stop()
        return false
    }

    /// Stops the daemons and removes the cluster's directory.
    static func stop() { _ = try? shell("timeout -k 10 120 \(script) stop \(directory); rm -rf \(directory)") }

    /// Runs `script` with bash; exit status and the combined output. The output goes through a
    /// file, not a pipe: the daemons the script starts would hold a pipe open. For the same reason
    /// the shell first closes every descriptor but 0-2 it inherits from this process (other tests
    /// run tools with pipes meanwhile; a daemon holding one would keep that test waiting forever).
    static func shell(_ script: String) throws -> (Int32, String) {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mi-slurm-shell-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        // posix_spawn and waitpid, not Process: the daemons the script leaves behind kept
        // Foundation's Process from seeing the shell end.
        let closing = #"for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null; "#
        let words = ["/bin/bash", "-c", closing + "export SLURM_CONF=\(directory)/slurm.conf; (\(script)) </dev/null >\(log) 2>&1"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, "/bin/bash", nil, nil, argv, environ) == 0 else { return (127, "cannot start /bin/bash") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return (127, "waitpid: errno \(errno)") }
        }
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }
}
