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
        let failure = try SlurmLocal.start()
        defer { SlurmLocal.stop() }
        if let failure {
            // Where the packages cannot be installed or the daemons cannot start, say so and stop:
            // the recipe is then untested here, which the log shows.
            print("SlurmRecipeTests: not run: scripts/slurm-local.sh start failed: \(failure)")
            return
        }
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

    static func stop() { _ = try? shell("timeout -k 10 120 \(script) stop \(directory)") }

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
