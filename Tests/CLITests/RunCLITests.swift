import Foundation
import Testing

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// mi-run: the whole loop on the tiny checkpoint (every stage real except mi-generate, which a
/// config may replace; here a script hands out fixed candidates, since a random model writes no
/// usable instructions), then reruns that skip, redo what changed, and resume an interrupted step.
@Suite struct RunCLITests {
    static let repo = SFTCLITests.fixtures.deletingLastPathComponent().deletingLastPathComponent()
    static let seeds = repo.appendingPathComponent("data/seeds.jsonl").path

    /// Four prompts with three candidates each, in mi-generate's record form.
    static let candidates: String = {
        let instructions = [
            ["Name three rivers in Africa.", "Describe how a bicycle gear works.", "Write a limerick about a sleepy cat."],
            [
                "List two uses of baking soda at home.", "Explain why the sky looks blue at noon.",
                "Suggest a title for a mystery novel set on a train.",
            ],
            [
                "Give an example of a prime number above fifty.", "Summarise the plot of a fairy tale you know.",
                "Translate 'good morning' into French and Spanish.",
            ],
            ["Convert 30 degrees Celsius to Fahrenheit.", "Recommend a board game for four players and say why.", "What is the capital of Canada?"],
        ]
        var lines: [String] = []
        for (p, group) in instructions.enumerated() {
            for (s, text) in group.enumerated() {
                let o: [String: Any] = [
                    "id": "p\(p)-s\(s)", "prompt_id": "p\(p)", "prompt": "Write a new task, number \(p).",
                    "raw": "<instruction>\(text)</instruction>", "instruction": text,
                ]
                lines.append(String(decoding: try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }()

    /// A run directory with the config, the candidate script and a 12-record reference set.
    func setUp(_ dir: TempDir, rounds: Int, candidates: String = RunCLITests.candidates) throws -> String {
        dir.write("candidates.jsonl", candidates)
        let script = dir.write(
            "fake-generate.sh",
            """
            #!/bin/sh
            # Stands in for mi-generate: writes the fixed candidates to the -o file.
            out=""
            while [ $# -gt 0 ]; do [ "$1" = "-o" ] && out="$2"; shift; done
            gzip -c -n "$(dirname "$0")/candidates.jsonl" > "$out"
            """)
        chmod(script, 0o755)
        let reference =
            try String(contentsOfFile: Self.repo.appendingPathComponent("data/reference.jsonl").path, encoding: .utf8)
            .split(separator: "\n").prefix(12).joined(separator: "\n") + "\n"
        dir.write("reference.jsonl", reference)
        return dir.write(
            "config.yaml",
            """
            teacher: \(SFTCLITests.tiny)
            seeds: \(Self.seeds)
            reference: reference.jsonl    # relative to this file
            run_dir: run
            heldout_fraction: 0.25
            rounds: \(rounds)
            seed: 3
            commands:
              mi-generate: fake-generate.sh
            sampling: {max_tokens: 6, batch_size: 4}
            warmup:
              sft: {lr: 1e-3, batch_size: 2}
            probing:
              probe: {lr: 1e-3}
            dpo: {lr: 1e-3, batch_size: 2, beta: 0.2}
            training:
              sft: {lr: 1e-3, batch_size: 2}
            """)
    }

    func zcat(_ path: String) throws -> String { try systemGunzip(path) }

    /// The steps a run started (its "mi-run: STEP" lines).
    func started(_ r: RunResult) -> Set<String> {
        Set(
            r.stderrLines.compactMap { l in
                guard l.hasPrefix("mi-run: "), !l.contains(" " + "error"), !l.contains("run directory"), !l.contains("no preference") else {
                    return nil
                }
                return String(l.dropFirst(8).split(separator: ":").first ?? "")
            })
    }

    func ledger(_ dir: TempDir) throws -> [String: [String: Any]] {
        let steps = dir.path("run/.mi-run/steps")
        var out: [String: [String: Any]] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: steps) where name.hasSuffix(".json") {
            let o = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: steps + "/" + name))) as! [String: Any]
            out[o["step"] as! String] = o
        }
        return out
    }

    @Test func loopRunsThenSkipsAndRedoesOnlyWhatChanged() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 2)
        let first = try run("mi-run", ["--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        let steps = try ledger(dir)
        #expect(steps.count == 1 + 4 + 2 * 16) // split; warm-up 4; per round 16 (DPO ran in both)
        #expect(steps.values.allSatisfy { $0["status"] as? String == "done" })
        // Each finished step keeps its wall time.
        #expect(steps.values.allSatisfy { ($0["seconds"] as? Double).map { $0 >= 0 } == true && $0["resumed"] as? Bool == false })
        // The teacher learned from real pairs, and both students were evaluated on the held-out quarter.
        let pairs = try zcat(dir.path("run/round-1/pairs.jsonl.gz")).split(separator: "\n")
        #expect(!pairs.isEmpty)
        #expect(FileManager.default.fileExists(atPath: dir.path("run/round-1/teacher/model.safetensors")))
        let eval = try String(contentsOfFile: dir.path("run/round-2/eval.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(eval.count == 3)
        #expect(eval.allSatisfy { $0.contains("\"loss\":") && $0.contains("\"loss_against\":") })
        let summary = try String(contentsOfFile: dir.path("run/summary.md"), encoding: .utf8)
        #expect(summary.contains("| round 2: held-out loss: Montessori student (95 % CI) |"))
        #expect(summary.contains("| round 1: preference pairs (prompts with pairs) | \(pairs.count) ("))
        // The table explains itself: direction of the loss, sign of the influence, equal sizes, and
        // that a run this small shows the loop works, not the method's effect.
        #expect(summary.contains("lower is better"))
        #expect(summary.contains("Above 0 the step lowered that loss: helpful"))
        #expect(summary.contains("training records per student (both sets cut to the smaller) |"))
        #expect(summary.contains("the run shows that the loop works end to end, not whether the method helps"))

        // Nothing changed: nothing runs, the summary is the same.
        let again = try run("mi-run", ["--config", config])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(started(again).isEmpty, "\(started(again))")
        #expect(again.stderr.contains("0 steps run, 0 resumed, \(steps.count) already done"))
        #expect(try String(contentsOfFile: dir.path("run/summary.md"), encoding: .utf8) == summary)

        // A DPO setting changed: the DPO step and what depends on the updated teacher run again;
        // the warm-up, round 1's probing and the baseline's data do not, nor does a step whose
        // inputs come out the same (the stand-in generator ignores the teacher).
        let changed = try run("mi-run", ["--config", config, "--set", "dpo.beta=0.3"])
        #expect(changed.status == 0, "\(changed.stderr)")
        let redone = started(changed)
        #expect(redone.contains("round-1/dpo"))
        #expect(redone.contains("round-1/montessori-respond"))
        #expect(redone.contains("round-1/sft-montessori"))
        #expect(redone.contains("round-1/eval"))
        for kept in [
            "split", "warmup/sft", "round-1/probe", "round-1/pair", "round-1/baseline-respond", "round-1/sft-baseline",
            "round-1/montessori-dedupe",
        ] {
            #expect(!redone.contains(kept), "\(kept) ran again")
        }
    }

    @Test func anInterruptedStepIsResumedAndWhatFollowsKept() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let first = try run("mi-run", ["--config", config])
        #expect(first.status == 0, "\(first.stderr)")
        // As a kill during the probe leaves it: two records in the partial output, the step running.
        let scored = dir.path("run/round-1/scored.jsonl.gz")
        let whole = try zcat(scored)
        let head = whole.split(separator: "\n").prefix(2).joined(separator: "\n") + "\n"
        try FileManager.default.removeItem(atPath: scored)
        dir.write("run/round-1/scored.jsonl.gz.partial", try systemGzip(head))
        let state = dir.path("run/.mi-run/steps/round-1--probe.json")
        let text = try String(contentsOfFile: state, encoding: .utf8)
        try text.replacingOccurrences(of: "\"status\":\"done\"", with: "\"status\":\"running\"").write(
            toFile: state, atomically: true, encoding: .utf8)

        let resumed = try run("mi-run", ["--config", config])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("mi-run: round-1/probe: resuming"))
        #expect(try zcat(scored) == whole)
        // The scores are the same, so nothing after the probe runs again.
        #expect(started(resumed) == ["round-1/probe"], "\(started(resumed))")
        #expect(resumed.stderr.contains("0 steps run, 1 resumed"))
    }

    @Test func badConfigsAndEmptyDataStopWithTheirReason() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let good = try String(contentsOfFile: config, encoding: .utf8)
        let cases: [(String, String, Int32)] = [
            (good + "\nprobing_rounds: 2\n", "config.yaml:18:1: unknown key \"probing_rounds\"", 78),
            (
                good.replacingOccurrences(of: "probe: {lr: 1e-3}", with: "probe: {lr: 1e-3, out: x.jsonl}"),
                "probing.probe.out is set by mi-run itself", 78
            ),
            (good.replacingOccurrences(of: "rounds: 1", with: "rounds: 0"), "config.yaml:6:9: rounds must be an integer ≥ 1", 78),
            (good + "\ncompute: fp16\n", "config.yaml:18:10: compute must be f32 or bf16", 78),
            (good.replacingOccurrences(of: "run_dir: run\n", with: ""), "no run_dir; give --run-dir", 78),
            ("teacher: [a, b\n", "config.yaml:", 78),
            (
                good.replacingOccurrences(of: "reference: reference.jsonl", with: "reference: ${MI_TEST_UNSET}/r.jsonl"),
                "config.yaml:3:12: environment variable \"MI_TEST_UNSET\" is not set", 78
            ),
        ]
        for (text, message, status) in cases {
            dir.write("bad.yaml", text)
            let r = try run("mi-run", ["--config", dir.path("bad.yaml")])
            #expect(r.status == status, "\(r.stderr)")
            #expect(r.stderr.contains(message.replacingOccurrences(of: "config.yaml", with: "bad.yaml")), "\(r.stderr)")
            #expect(r.stderrLines.count == 1, "\(r.stderr)")
        }
        // A teacher whose every candidate is filtered out: the run says which step has no data.
        let empty = TempDir()
        let emptyConfig = try setUp(empty, rounds: 1, candidates: "")
        let r = try run("mi-run", ["--config", emptyConfig])
        #expect(r.status == 65, "\(r.stderr)")
        #expect(r.stderr.contains("warmup/sft: ") && r.stderr.contains("has no records"), "\(r.stderr)")
    }

    /// Two runs on one directory would write the same files: the second is refused while the
    /// first (or a tool it started) holds the directory's lock.
    @Test func aDirectoryInUseIsRefused() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        try FileManager.default.createDirectory(atPath: dir.path("run/.mi-run"), withIntermediateDirectories: true)
        let fd = open(dir.path("run/.mi-run/lock"), O_RDWR | O_CREAT, 0o644)
        #expect(fd >= 0 && flock(fd, LOCK_EX) == 0)
        let refused = try run("mi-run", ["--config", config])
        #expect(refused.status == 75, "\(refused.stderr)")
        #expect(refused.stderr.contains("is in use by another mi-run"))
        close(fd)
        // Paths may name environment variables; here the reference set comes through one.
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "reference: reference.jsonl", with: "reference: ${MI_TEST_DIR}/reference.jsonl")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let ok = try run("mi-run", ["--config", config], environment: ["MI_TEST_DIR": dir.path("")])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    /// probe_shards: N processes of `mi-probe --shard k/N`, merged back into input order, score
    /// what one process scores.
    @Test func probeShardsMergeIntoTheSameScores() throws {
        let one = TempDir(), three = TempDir()
        let a = try run("mi-run", ["--config", try setUp(one, rounds: 1)])
        #expect(a.status == 0, "\(a.stderr)")
        let b = try run("mi-run", ["--config", try setUp(three, rounds: 1), "--set", "probe_shards=3"])
        #expect(b.status == 0, "\(b.stderr)")
        func scores(_ dir: TempDir) throws -> [(String, Double)] {
            try zcat(dir.path("run/round-1/scored.jsonl.gz")).split(separator: "\n").map {
                let o = try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
                return (o["id"] as! String, o["influence"] as! Double)
            }
        }
        let x = try scores(one), y = try scores(three)
        #expect(x.map(\.0) == y.map(\.0) && x.count == 12)
        // One BLAS thread per shard instead of two changes the order of f32 sums: the scores agree
        // to the rounding of the reference losses (about 7 here, so 1e-6), not bit for bit.
        for (p, q) in zip(x, y) { #expect(abs(p.1 - q.1) <= 1e-6, "\(p.0): \(p.1) vs \(q.1)") }
        #expect(x.contains { abs($0.1) > 1e-4 })
        for k in 0..<3 { #expect(FileManager.default.fileExists(atPath: three.path("run/round-1/scored-shard-\(k)-of-3.jsonl.gz"))) }
        let again = try run("mi-run", ["--config", three.path("config.yaml"), "--set", "probe_shards=3"])
        #expect(again.stderr.contains("0 steps run, 0 resumed"), "\(again.stderr)")
    }

    /// SIGTERM to mi-run reaches the tool it is running; the run stops with 75 and leaves the step
    /// marked running, so the next run resumes it.
    @Test func aStopSignalIsPassedToTheRunningTool() throws {
        let dir = TempDir()
        var config = try String(contentsOfFile: try setUp(dir, rounds: 1), encoding: .utf8)
        let script = dir.write(
            "slow-dedupe.sh",
            """
            #!/bin/sh
            # Stands in for mi-dedupe: says it started, then waits to be stopped.
            trap 'echo stopped > "$(dirname "$0")/stopped"; exit 75' TERM
            touch "$(dirname "$0")/started"
            i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
            exit 1
            """)
        chmod(script, 0o755)
        config = config.replacingOccurrences(
            of: "  mi-generate: fake-generate.sh", with: "  mi-generate: fake-generate.sh\n  mi-dedupe: slow-dedupe.sh")
        dir.write("config.yaml", config)
        let p = Process()
        p.executableURL = Executables.url("mi-run")
        p.arguments = ["--config", dir.path("config.yaml"), "--quiet"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        var waited = 0
        while !dir.exists("started") && waited < 600 {
            usleep(50_000)
            waited += 1
        }
        #expect(dir.exists("started"))
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 75)
        #expect(dir.exists("stopped"))
        let state = try String(contentsOfFile: dir.path("run/.mi-run/steps/warmup--dedupe.json"), encoding: .utf8)
        #expect(state.contains("\"status\":\"running\""))
    }

    /// A step's stale output that is a symbolic link is removed as a link: what it points to stays.
    @Test func staleOutputsThatAreLinksKeepTheirTargets() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        try FileManager.default.createDirectory(atPath: dir.path("keep"), withIntermediateDirectories: true)
        dir.write("keep/precious.txt", "do not delete")
        try FileManager.default.createDirectory(atPath: dir.path("run/warmup"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.path("run/warmup/student"), withDestinationPath: dir.path("keep"))
        let r = try run("mi-run", ["--config", config])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(dir.exists("keep/precious.txt"))
        #expect(dir.exists("run/warmup/student/model.safetensors"))
    }

    /// The command a finished step ran, from the ledger.
    func command(_ steps: [String: [String: Any]], _ step: String) -> [String] {
        ((steps[step]?["result"] as? [String: Any])?["command"] as? [String]) ?? []
    }

    /// SFT and DPO get --shuffle with a seed derived from the run's unless the config says
    /// otherwise; students_start: base trains round 1's students from the given student;
    /// student_layers cuts the student from the given model.
    @Test func trainingIsShuffledAndStudentsStartWhereConfigured() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let first = try run("mi-run", ["--config", config, "--set", "students_start=base"])
        #expect(first.status == 0, "\(first.stderr)")
        let steps = try ledger(dir)
        for step in ["warmup/sft", "round-1/dpo", "round-1/sft-montessori", "round-1/sft-baseline"] {
            let c = command(steps, step)
            #expect(c.contains("--shuffle"), "\(step): \(c)")
            #expect(c.contains { $0.hasPrefix("--seed=") }, "\(step): \(c)")
        }
        #expect(command(steps, "round-1/sft-montessori").contains(SFTCLITests.tiny))
        #expect(command(steps, "round-1/probe").contains(dir.path("run/warmup/student")))

        let other = TempDir()
        let plain = try setUp(other, rounds: 1)
        let again = try run("mi-run", ["--config", plain, "--set", "shuffle=false", "--set", "student_layers=1"])
        #expect(again.status == 0, "\(again.stderr)")
        let s2 = try ledger(other)
        #expect(!command(s2, "round-1/dpo").contains("--shuffle"))
        // The default start: the warmed-up student.
        #expect(command(s2, "round-1/sft-montessori").contains(other.path("run/warmup/student")))
        // student_layers: the student is the given one cut to those blocks; the teacher is whole.
        #expect(command(s2, "student").contains("--layers"))
        #expect(command(s2, "warmup/sft").contains(other.path("run/student.gguf")))
        #expect(command(s2, "round-1/probe-respond").contains(SFTCLITests.tiny))
        for (model, layers) in [(other.path("run/warmup/student"), 1), (other.path("run/round-1/student-montessori"), 1)] {
            let info = try run("mi-model", ["info", "--model", model])
            try #require(info.status == 0, "\(model): \(info.stderr)")
            let o = try JSONSerialization.jsonObject(with: Data(info.stdoutText.utf8)) as? [String: Any]
            #expect(o?["layers"] as? Int == layers, "\(model): \(info.stdoutText)")
        }
        let bad = try run("mi-run", ["--config", plain, "--set", "students_start=middle"])
        #expect(bad.status == 78)
        #expect(bad.stderr.contains("students_start must be warmup or base"))
    }

    /// `responder: original`: the original teacher answers every set, also the instructions of
    /// the DPO'd teacher (round 1's training set, round 2's probing set); by default each teacher
    /// answers its own.
    @Test func theOriginalTeacherAnswersWhenConfigured() throws {
        for responder in ["teacher", "original"] {
            let dir = TempDir()
            let config = try setUp(dir, rounds: 2)
            let r = try run("mi-run", ["--config", config, "--set", "responder=\(responder)"])
            #expect(r.status == 0, "\(r.stderr)")
            let steps = try ledger(dir)
            let updated = [("round-1/montessori-respond", "run/round-1/teacher"), ("round-2/probe-respond", "run/round-1/teacher")]
            for (step, teacher) in updated {
                let c = command(steps, step)
                let answering = c.firstIndex(of: "--teacher").map { c[$0 + 1] }
                #expect(answering == (responder == "original" ? SFTCLITests.tiny : dir.path(teacher)), "\(step): \(c)")
            }
            // Whoever answers, the DPO'd teacher writes the instructions.
            #expect(command(steps, "round-1/montessori-generate").contains(dir.path("run/round-1/teacher")))
            #expect(command(steps, "round-1/baseline-respond").contains(SFTCLITests.tiny))
        }
    }

    /// `montessori_set: chosen`: the original teacher's candidates of the first `training.records`
    /// prompts; the Montessori set holds, of each prompt's, the one whose log-probability rises
    /// most from the original to the DPO'd teacher, the baseline the first; the original teacher
    /// answers both. The mechanism scores the same choice on the fresh candidates.
    @Test func theUpdatedTeacherChoosesAmongTheOriginalTeachersCandidates() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let r = try run(
            "mi-run",
            ["--config", config, "--set", "montessori_set=chosen", "--set", "training.records=3", "--set", "experiment.mechanism_prompts=4"])
        #expect(r.status == 0, "\(r.stderr)")
        func records(_ name: String) throws -> [[String: Any]] {
            try zcat(dir.path("run/round-1/" + name)).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        func sums(_ name: String) throws -> [String: Double] {
            Dictionary(uniqueKeysWithValues: try records(name).map { ($0["id"] as! String, $0["sum"] as! Double) })
        }
        let candidates = try records("baseline-selected.jsonl.gz")
        #expect(Set(candidates.map { $0["prompt_id"] as! String }) == ["p0", "p1", "p2"])
        let original = try sums("choose-logprobs-original.jsonl.gz"), updated = try sums("choose-logprobs-montessori.jsonl.gz")
        var first: [String] = [], best: [String] = []
        for p in ["p0", "p1", "p2"] {
            let ids = candidates.filter { $0["prompt_id"] as? String == p }.map { $0["id"] as! String }
            first.append(ids[0])
            best.append(ids.max { updated[$0]! - original[$0]! < updated[$1]! - original[$1]! }!)
        }
        #expect(try records("montessori-chosen.jsonl.gz").map { $0["id"] as! String } == best)
        #expect(try records("baseline-chosen.jsonl.gz").map { $0["id"] as! String } == first)
        // The teacher moved, and on the candidates it was DPO-trained on (the fake generator's are
        // the probing set's too) its choice is a pair's chosen candidate of that prompt.
        #expect(updated.keys.map { abs(updated[$0]! - original[$0]!) }.max()! > 1)
        let pairs = try records("pairs.jsonl.gz")
        for id in best {
            let prompt = String(id.prefix { $0 != "-" })
            let ofPrompt = pairs.filter { ($0["chosen_id"] as! String).hasPrefix(prompt + "-") }
            if !ofPrompt.isEmpty { #expect(ofPrompt.contains { $0["chosen_id"] as? String == id }, "\(id): \(ofPrompt)") }
        }
        #expect(pairs.contains { ["p0", "p1", "p2"].contains(String(($0["chosen_id"] as! String).prefix(2))) })
        let steps = try ledger(dir)
        for step in ["round-1/montessori-respond", "round-1/baseline-respond"] {
            let c = command(steps, step)
            #expect(c.firstIndex(of: "--teacher").map { c[$0 + 1] } == SFTCLITests.tiny, "\(step): \(c)")
        }
        #expect(command(steps, "round-1/choose-logprobs-montessori").contains(dir.path("run/round-1/teacher")))
        #expect(steps["round-1/montessori-generate"] == nil, "the DPO'd teacher writes nothing")
        #expect(try records("train-montessori.jsonl.gz").count == 3 && records("train-baseline.jsonl.gz").count == 3)
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("run/result.json")))) as! [String: Any]
        let chosen = try #require((result["mechanism_chosen"] as? [String: Any])?["montessori"] as? [String: Any])
        #expect(chosen["prompts"] as? Int == 4)
        #expect((chosen["best"] as? Double ?? -1) >= (chosen["diff"] as? Double ?? 1))
        let same = chosen["same_as_best"] as? Int ?? -1
        #expect((0...4).contains(same) && (chosen["first"] as? [String: Any])?["diff"] is Double, "\(chosen)")
    }

    /// `montessori_set: influence`, the oracle of `chosen`: every candidate of the first
    /// `training.records` prompts is answered by the original teacher and probed on the round's
    /// student; the Montessori set holds each prompt's most influential candidate, the baseline
    /// its first, both from the same answers; no teacher chooses and there is no control student,
    /// but the DPO'd and the control teacher's implicit-reward choices are scored (training_choice).
    @Test func theStudentsInfluenceChoosesAmongTheOriginalTeachersCandidates() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let arguments = ["--config", config, "--set", "montessori_set=influence", "--set", "training.records=3", "--set", "experiment.control=true"]
        // The plan prices the steps the run takes.
        let plan = try run("mi-run", arguments + ["--plan"])
        #expect(plan.status == 0, "\(plan.stderr)")
        let r = try run("mi-run", arguments)
        #expect(r.status == 0, "\(r.stderr)")
        let planned =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("run/.mi-run/plan.json")))) as! [String: Any]
        let ran = try FileManager.default.contentsOfDirectory(atPath: dir.path("run/.mi-run/steps")).map {
            String($0.dropLast(5)).replacingOccurrences(of: "--", with: "/")
        }
        // (The calibrated yield is an estimate: the plan may continue a generation the stand-in
        // generator did not need to.)
        let priced = Set((planned["steps"] as! [[String: Any]]).map { $0["step"] as! String })
        #expect(Set(ran).isSubset(of: priced) && priced.subtracting(ran).allSatisfy { $0.hasSuffix("-2") }, "\(priced) against \(ran)")
        func records(_ name: String) throws -> [[String: Any]] {
            try zcat(dir.path("run/round-1/" + name)).split(separator: "\n").map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
        }
        let candidates = try records("baseline-selected.jsonl.gz"), scored = try records("choose-scored.jsonl.gz")
        #expect(scored.map { $0["id"] as! String } == candidates.map { $0["id"] as! String })
        var first: [String] = [], best: [String] = []
        for p in ["p0", "p1", "p2"] {
            let ofPrompt = scored.filter { $0["prompt_id"] as? String == p }
            #expect(ofPrompt.count >= 2, "\(p): the choice needs candidates to choose from")
            first.append(ofPrompt[0]["id"] as! String)
            best.append(ofPrompt.max { ($0["influence"] as! Double) < ($1["influence"] as! Double) }!["id"] as! String)
        }
        #expect(best != first, "the fake teacher's candidates differ in influence")
        for (file, ids) in [("montessori-chosen", best), ("baseline-chosen", first), ("train-montessori", best), ("train-baseline", first)] {
            let got = try records(file + ".jsonl.gz")
            #expect(got.map { $0["id"] as! String } == ids, "\(file)")
            // The answers are the probed ones, unchanged.
            for g in got {
                #expect(scored.contains { $0["id"] as? String == g["id"] as? String && $0["response"] as? String == g["response"] as? String })
            }
        }
        let steps = try ledger(dir)
        let c = command(steps, "round-1/choose-respond")
        #expect(c.firstIndex(of: "--teacher").map { c[$0 + 1] } == SFTCLITests.tiny, "\(c)")
        #expect(command(steps, "round-1/choose-probe").contains(dir.path("run/warmup/student")))
        for step in ["round-1/montessori-respond", "round-1/baseline-respond", "round-1/montessori-generate", "round-1/sft-control"] {
            #expect(steps[step] == nil, "\(step)")
        }
        // The DPO'd teacher's choice of the same candidates by its implicit reward, scored by their
        // probed influence: recomputed here from the run's log-probabilities.
        let sums = try ["original", "montessori"].map { label in
            Dictionary(uniqueKeysWithValues: try records("choose-logprobs-\(label).jsonl.gz").map { ($0["id"] as! String, $0["sum"] as! Double) })
        }
        let control = Dictionary(
            uniqueKeysWithValues: try records("choose-logprobs-control.jsonl.gz").map { ($0["id"] as! String, $0["sum"] as! Double) })
        var gains: [Double] = [], firsts: [Double] = [], versusControl: [Double] = []
        for p in ["p0", "p1", "p2"] {
            let ofPrompt = scored.filter { $0["prompt_id"] as? String == p }
            let influence = ofPrompt.map { $0["influence"] as! Double }, mean = influence.reduce(0, +) / Double(influence.count)
            func pick(_ updated: [String: Double]) -> Double {
                let ratio = ofPrompt.map { updated[$0["id"] as! String]! - sums[0][$0["id"] as! String]! }
                return influence[ratio.firstIndex(of: ratio.max()!)!]
            }
            gains.append(pick(sums[1]) - mean)
            firsts.append(influence[0] - mean)
            versusControl.append(pick(sums[1]) - pick(control))
        }
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("run/result.json")))) as! [String: Any]
        let choice = try #require((result["training_choice"] as? [String: Any])?["montessori"] as? [String: Any], "\(result.keys)")
        #expect(choice["prompts"] as? Int == 3)
        #expect(abs((choice["diff"] as! Double) - gains.reduce(0, +) / 3) < 1e-9, "\(choice) against \(gains)")
        #expect(abs(((choice["first"] as! [String: Any])["diff"] as! Double) - firsts.reduce(0, +) / 3) < 1e-9)
        #expect((choice["length_adjusted"] as? [String: Any])?["chosen"] is [String: Any] && choice["response_chars"] is [String: Any])
        // The random-label control teacher's choice is scored too, though it trains no student.
        #expect(command(steps, "round-1/choose-logprobs-control").contains(dir.path("run/round-1/teacher-control")))
        #expect(((result["training_choice"] as? [String: Any])?["control"] as? [String: Any])?["prompts"] as? Int == 3)
        let paired = (result["training_choice"] as? [String: Any])?["montessori_vs_control"] as? [String: Any]
        #expect(abs((paired?["diff"] as? Double ?? .nan) - versusControl.reduce(0, +) / 3) < 1e-9, "\(String(describing: paired))")
        let summary = try String(contentsOfFile: dir.path("run/summary.md"), encoding: .utf8)
        #expect(summary.contains("chosen by influence on the student (oracle)"))
        #expect(summary.contains("original's training candidates") && summary.contains("the most influential or the first"), "\(summary)")
    }

    /// `montessori_set: chosen` with `training.records`: the original teacher's generation is
    /// continued until that many prompts have a candidate (one per even prompt here, so the steps
    /// are the written mode's), and each set holds one candidate of each of the first prompts.
    @Test func chosenSetsAreGeneratedToAPromptCount() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        chmod(dir.write("fake-generate.sh", Self.countingGenerator), 0o755)
        let r = try run(
            "mi-run", ["--config", config, "--set", "montessori_set=chosen", "--set", "training.records=10", "--set", "training.generate.prompts=2"])
        #expect(r.status == 0, "\(r.stderr)")
        let steps = try ledger(dir)
        #expect(command(steps, "round-1/baseline-generate-2").contains("--prompts=8"))
        #expect(command(steps, "round-1/baseline-generate-3").contains("--prompts=23"))
        #expect(steps["round-1/montessori-generate"] == nil && steps["round-1/baseline-generate-4"] == nil)
        func ids(_ file: String) throws -> [String] {
            try zcat(dir.path("run/round-1/" + file)).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String
            }
        }
        let first10 = (0..<10).map { "p\($0 * 2)-s0" }
        #expect(try ids("baseline-selected.jsonl.gz") == first10)
        for label in ["montessori", "baseline"] { #expect(try ids("train-\(label).jsonl.gz") == first10, "\(label)") }
        let far = try run(
            "mi-run",
            ["--config", config, "--set", "montessori_set=chosen", "--set", "training.records=100000", "--set", "training.generate.prompts=2"])
        #expect(far.status == 65)
        #expect(far.stderr.contains("prompts with an instruction after deduplication"), "\(far.stderr)")
    }

    /// `chat_template: FILE` enters the model steps' fingerprints by the file's content: the same
    /// file again reruns nothing, an edited one reruns every step that runs a model.
    @Test func anEditedChatTemplateFileRerunsTheModelSteps() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        let template = try String(contentsOfFile: SFTCLITests.tiny + "/chat_template.jinja", encoding: .utf8)
        dir.write("template.jinja", template)
        let arguments = ["--config", config, "--set", "chat_template=template.jinja", "--set", "warmup=false"]
        let first = try run("mi-run", arguments)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(command(try ledger(dir), "round-1/sft-montessori").contains("--chat-template"))
        let same = try run("mi-run", arguments)
        #expect(same.status == 0 && started(same).isEmpty, "\(started(same))")
        dir.write("template.jinja", "{#- edited -#}\n" + template)
        let edited = try run("mi-run", arguments)
        #expect(edited.status == 0, "\(edited.stderr)")
        let rerun = started(edited)
        for step in ["round-1/probe-respond", "round-1/probe", "round-1/dpo", "round-1/sft-montessori", "round-1/eval"] {
            #expect(rerun.contains(step), "\(step): \(rerun)")
        }
        #expect(!rerun.contains("round-1/probe-dedupe"), "a step without a model keeps its output")
    }

    /// A stand-in for mi-generate that honours `--prompts`: prompt p's candidates depend only on p
    /// (as mi-generate's do), one for each even prompt and none for odd ones, each a distinct
    /// sequence of made-up words; every `--extend FROM` it is given is logged.
    static let countingGenerator = #"""
        #!/bin/sh
        out=""; prompts=16
        while [ $# -gt 0 ]; do
          case "$1" in
            -o) out="$2"; shift ;;
            --prompts=*) prompts="${1#--prompts=}" ;;
            --extend) echo "$2 $prompts" >> "$(dirname "$0")/extend.log"; shift ;;
          esac
          shift
        done
        awk -v n="$prompts" 'BEGIN {
          split("ka lo mi ne pu ro sa ti vu ze", syl, " ")
          for (p = 0; p < n; p += 2) {
            x = p * 7 + 1; text = "Describe"
            for (w = 0; w < 8; w++) { x = (x * 69069 + 1) % 4294967296; k = int(x / 65536) % 100; text = text " " syl[k % 10 + 1] syl[int(k / 10) + 1] }
            printf "{\"id\":\"p%d-s0\",\"prompt_id\":\"p%d\",\"prompt\":\"Write a task.\",\"raw\":\"<instruction>%s.</instruction>\",\"instruction\":\"%s.\"}\n", p, p, text, text
          }
        }' | gzip -c -n > "$out"
        """#

    /// `training.records`: generate continues (`--extend` of the previous output, more prompts)
    /// until the deduplicated instructions reach the count; both students get exactly that many,
    /// the first of one long run; a rerun redoes nothing; a count the teacher cannot reach stops
    /// the run with its reason.
    @Test func trainingSetsAreGeneratedToARecordCount() throws {
        let dir = TempDir()
        let config = try setUp(dir, rounds: 1)
        chmod(dir.write("fake-generate.sh", Self.countingGenerator), 0o755)
        let arguments = ["--config", config, "--set", "training.records=10", "--set", "training.generate.prompts=2"]
        let r = try run("mi-run", arguments)
        #expect(r.status == 0, "\(r.stderr)")
        let steps = try ledger(dir)
        // 2 prompts keep 1; then 2 + 6 (capped at 3× more) keep 4; then 8 + ⌈6 / 0.5 × 1.1⌉ + 1 = 23 keep 12.
        #expect(command(steps, "round-1/montessori-generate-2").contains("--prompts=8"))
        #expect(command(steps, "round-1/montessori-generate-3").contains("--prompts=23"))
        #expect(steps["round-1/montessori-generate-4"] == nil)
        let log = String(decoding: dir.read("extend.log"), as: UTF8.self)
        #expect(log.contains(dir.path("run/round-1/montessori-instructions.jsonl.gz") + " 8"))
        #expect(log.contains(dir.path("run/round-1/baseline-instructions-2.jsonl.gz") + " 23"))
        func ids(_ file: String) throws -> [String] {
            try zcat(dir.path("run/round-1/" + file)).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String
            }
        }
        let first10 = (0..<10).map { "p\($0 * 2)-s0" }
        #expect(try ids("montessori-deduped-3.jsonl.gz").count == 12)
        for label in ["montessori", "baseline"] {
            #expect(try ids("\(label)-selected.jsonl.gz") == first10)
            #expect(try ids("train-\(label).jsonl.gz") == first10, "\(label)")
        }
        let again = try run("mi-run", arguments)
        #expect(again.status == 0 && started(again).isEmpty, "\(started(again))")

        let far = try run("mi-run", ["--config", config, "--set", "training.records=100000", "--set", "training.generate.prompts=2"])
        #expect(far.status == 65)
        #expect(far.stderr.contains("fewer than records 100000"), "\(far.stderr)")
    }

    /// configs/experiment.yaml and its length-adjusted variant at a tiny size: the control
    /// teacher, the fresh candidates of each teacher, the exact sample and result.json in the
    /// documented form.
    @Test(
        arguments: [
            "experiment", "experiment-adjusted", "experiment-aligned", "experiment-cut-student", "experiment-rank", "experiment-rpo",
            "experiment-chosen", "experiment-influence",
        ])
    func theExperimentConfigRunsToAResult(_ name: String) throws {
        let dir = TempDir()
        // The cut-student variant is the aligned one with a student cut from the teacher; the rank
        // variant is the cut-student one with other pairs, and the RPO variant the rank one with the
        // chosen side's NLL in the DPO loss; the chosen variant is the rank one whose updated
        // teacher chooses its student's training set, and the influence variant its oracle (the
        // most influential candidate of each prompt, no control student).
        let chosen = name == "experiment-chosen", influence = name == "experiment-influence"
        let rank = name == "experiment-rank" || name == "experiment-rpo" || chosen || influence
        let cut = name == "experiment-cut-student" || rank
        let aligned = name == "experiment-aligned" || cut
        _ = try setUp(dir, rounds: 1)
        let config = Self.repo.appendingPathComponent("configs/\(name).yaml").path
        // The stand-in generator's 12 candidates cannot reach the variant's 1,000 records. A
        // probing set to a count leaves the fresh candidates (same prompts per teacher) alone.
        // The variant also probes on two reference parts.
        let records =
            name == "experiment"
            ? []
            : [
                "--set", "training.records=\(chosen || influence ? 3 : 5)", "--set", "probing.records=8", "--set", "probing.probe.reference_parts=2",
            ]
        var arguments =
            records + [
                "--config", config, "--run-dir", dir.path("exp"),
                "--set", "teacher=\(SFTCLITests.tiny)", "--set", "commands.mi-generate=\(dir.path("fake-generate.sh"))",
                "--set", "reference=\(dir.path("reference.jsonl"))",
                "--set", "experiment.mechanism_prompts=2", "--set", "experiment.exact_fraction=0.5",
                "--set", "sampling.max_tokens=6", "--set", "probing.probe.lr=1e-3", "--set", "dpo.lr=1e-3",
                "--set", "dpo.heldout_fraction=0.5",
            ]
        // The aligned variant splits its reference set (12 records: 3 for the probe, spread through it).
        let heldout = aligned ? [] : ["--set", "heldout=\(dir.path("reference.jsonl"))"]
        arguments += heldout
        // The tiny teacher has 2 blocks; the student keeps the second.
        if cut { arguments += ["--set", "student_layers=1"] }
        // The plan first: it runs no step, and prices exactly the steps the run then takes.
        let plan = try run("mi-run", arguments + ["--plan"])
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("exp/.mi-run/steps")).isEmpty)
        let planned =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("exp/.mi-run/plan.json")))) as! [String: Any]
        let rows = planned["steps"] as! [[String: Any]]
        let seconds = rows.map { $0["seconds"] as! Double }
        #expect(seconds.allSatisfy { $0 >= 0 } && abs(seconds.reduce(0, +) - (planned["total_seconds"] as! Double)) < 1e-6)
        #expect(plan.stdoutText.contains("| round-1/probe-exact | ") && plan.stdoutText.contains("| **total** |"))
        #expect(!FileManager.default.fileExists(atPath: dir.path("exp/.mi-run/plan")), "the calibration's files are removed")
        // A cut student is timed as cut (1 of the test model's 2 blocks).
        let blocks = (planned["calibration"] as? [String: Any])?["cut student blocks"] as? Double
        #expect(blocks == (cut ? 1 : nil))

        let r = try run("mi-run", arguments)
        #expect(r.status == 0, "\(r.stderr)")
        let ran = try FileManager.default.contentsOfDirectory(atPath: dir.path("exp/.mi-run/steps")).map {
            String($0.dropLast(5)).replacingOccurrences(of: "--", with: "/")
        }
        #expect(Set(rows.map { $0["step"] as! String }) == Set(ran))
        #expect(ran.contains("round-1/probe-select") == (name != "experiment"))
        #expect(!ran.contains { $0.contains("mechanism") && $0.hasSuffix("-select") }, "\(ran)")
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("exp/result.json")))) as! [String: Any]
        #expect(result["seed"] as? Int == 1)
        for key in ["outcome", "mechanism", "control"] {
            let part = result[key] as? [String: Any]
            let ci = part?["ci"] as? [Double]
            #expect(part?["diff"] is Double && ci?.count == 2 && ci![0] <= ci![1], "\(key)")
        }
        // The token-weighted outcome: Σ tokens · (Montessori − baseline) / Σ tokens over eval.jsonl.
        let evaluated = try String(contentsOfFile: dir.path("exp/round-1/eval.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        let tokens = evaluated.map { Double($0["tokens"] as! Int) }
        let weighted = zip(evaluated, tokens).map { ($0["loss"] as! Double - ($0["loss_against"] as! Double)) * $1 }.reduce(0, +)
        let outcome = result["outcome"] as! [String: Any], perToken = outcome["token_weighted"] as? [String: Any]
        #expect(tokens.allSatisfy { $0 > 0 } && Set(tokens).count > 1)
        #expect(abs((perToken?["diff"] as? Double ?? .nan) - weighted / tokens.reduce(0, +)) < 1e-12, "\(outcome)")
        // eval-start: the model the students started from, alone, on the same records (the
        // students' losses are eval.jsonl's). Each student's difference from the start is the
        // mean of its losses minus the start's.
        let fromStart = try String(contentsOfFile: dir.path("exp/round-1/eval-start.jsonl"), encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
        #expect(fromStart.map { $0["instruction"] as? String } == evaluated.map { $0["instruction"] as? String })
        #expect(fromStart.allSatisfy { $0["loss_against"] == nil })
        let startLoss = fromStart.map { $0["loss"] as! Double }
        let versusStart = try #require(result["students_vs_start"] as? [String: Any])
        #expect(abs((versusStart["start_loss"] as? Double ?? .nan) - startLoss.reduce(0, +) / Double(startLoss.count)) < 1e-12)
        func fromStartMean(_ field: String) -> Double {
            zip(evaluated, startLoss).map { ($0[field] as! Double) - $1 }.reduce(0, +) / Double(startLoss.count)
        }
        #expect(abs(((versusStart["montessori"] as? [String: Any])?["diff"] as? Double ?? .nan) - fromStartMean("loss")) < 1e-12)
        #expect(abs(((versusStart["baseline"] as? [String: Any])?["diff"] as? Double ?? .nan) - fromStartMean("loss_against")) < 1e-12)
        #expect(((versusStart["control"] as? [String: Any])?["better_on"] is Int) == !influence)
        // The mechanism's answer lengths are its fresh sets' own (characters as mi-pair counts them).
        func meanChars(_ label: String) throws -> Double {
            let lengths = try zcat(dir.path("exp/round-1/mechanism-\(label)-scored.jsonl.gz")).split(separator: "\n").map {
                let record = try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
                return Double((record["response"] as! String).unicodeScalars.count)
            }
            return lengths.reduce(0, +) / Double(lengths.count)
        }
        let chars = (result["mechanism"] as? [String: Any])?["response_chars"] as? [Double]
        #expect(chars == [try meanChars("montessori"), try meanChars("original")])
        #expect((result["mechanism"] as? [String: Any])?["length_adjusted_diff"] is Double)
        // montessori_set: chosen: each DPO'd teacher's choice among the original's fresh candidates.
        let choices = result["mechanism_chosen"] as? [String: Any]
        #expect(chosen == (choices != nil))
        if chosen {
            for label in ["montessori", "control"] { #expect((choices?[label] as? [String: Any])?["best"] is Double, "\(label)") }
            #expect(try String(contentsOfFile: dir.path("exp/summary.md"), encoding: .utf8).contains("teacher's choice of the original's fresh"))
        }
        let teacher = result["teacher"] as! [String: Any]
        let accuracy = teacher["heldout_pair_accuracy"] as? Double
        #expect(accuracy != nil && (0...1).contains(accuracy!))
        #expect(ran.contains("student") == cut)
        if aligned {
            let probeIDs = try String(contentsOfFile: dir.path("exp/reference-probe.jsonl"), encoding: .utf8).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String
            }
            #expect(probeIDs == ["ref-001", "ref-005", "ref-009"])
            // experiment.mechanism_crossed. The stand-in generator gives every teacher the same
            // instructions and the answers are greedy, so each crossing repeats one teacher's own
            // candidates: the instructions add exactly 0 and the answers the whole mechanism.
            func responses(_ file: String) throws -> [String] {
                try zcat(dir.path("exp/round-1/\(file)-answered.jsonl.gz")).split(separator: "\n").map {
                    (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["response"] as! String
                }
            }
            let own = try responses("mechanism-original"), updated = try responses("mechanism-montessori")
            #expect(!own.isEmpty && own != updated, "the DPO'd teacher answers differently")
            #expect(try responses("mechanism-montessori-instructions") == own)
            #expect(try responses("mechanism-montessori-answers") == updated)
            let split = result["mechanism_split"] as? [String: Any]
            let instructions = split?["instructions"] as? [String: Any], answers = split?["answers"] as? [String: Any]
            let mechanism = result["mechanism"] as! [String: Any]
            #expect(abs(instructions?["diff"] as? Double ?? .nan) < 1e-12, "\(split ?? [:])")
            #expect(abs((answers?["diff"] as? Double ?? .nan) - (mechanism["diff"] as! Double)) < 1e-12)
            #expect(
                try String(contentsOfFile: dir.path("exp/summary.md"), encoding: .utf8).contains("mechanism from the Montessori teacher's answers"))
        }
        let probe = result["probe"] as! [String: Any]
        #expect((probe["exact_records"] as? Int ?? 0) > 0)
        if name != "experiment" {
            let scored = try zcat(dir.path("exp/round-1/scored.jsonl.gz")).split(separator: "\n")
            #expect(!scored.isEmpty && scored.allSatisfy { $0.contains("\"influence_parts\":[") })
            #expect(probe["parts_correlation"] != nil && probe["parts_within_prompt_order_pairs"] is Int, "\(probe)")
            // The same over what length-adjusted pairs are decided by: one pair of candidates
            // per prompt pair, as for the raw influences.
            #expect(probe["parts_length_adjusted_within_prompt_order_pairs"] as? Int == probe["parts_within_prompt_order_pairs"] as? Int)
        } else {
            #expect(probe["parts_correlation"] == nil)
        }
        // The control teacher learned from the same pairs, some with their labels swapped.
        let random = try zcat(dir.path("exp/round-1/pairs-random.jsonl.gz")).split(separator: "\n")
        let pairs = try zcat(dir.path("exp/round-1/pairs.jsonl.gz")).split(separator: "\n")
        #expect(random.count == pairs.count)
        if name != "experiment" {
            // Length-adjusted pairs, except the rank variant's: one per prompt, on the raw influence.
            let prompts = Set(
                try pairs.map { "\((try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["prompt_id"] ?? "none")" })
            #expect(!pairs.isEmpty && pairs.allSatisfy { $0.contains("\"chosen_adjusted_influence\"") != rank })
            if rank {
                #expect(prompts.count == pairs.count)
                // The selection check: a student on the pairs' chosen candidates against one on
                // their rejected ones (one pair per prompt, so every pair gives one record to each).
                let pairObjects = try pairs.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                for (label, key) in [("chosen", "chosen_id"), ("rejected", "rejected_id")] {
                    let set = try zcat(dir.path("exp/round-1/selection-\(label).jsonl.gz")).split(separator: "\n").map {
                        (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["id"] as! String
                    }
                    #expect(Set(set) == Set(pairObjects.map { $0[key] as! String }), "\(label)")
                }
                let selection = try #require(result["selection"] as? [String: Any])
                #expect(selection["training_records"] as? Int == pairs.count)
                let selectionEval = try String(contentsOfFile: dir.path("exp/round-1/eval-selection.jsonl"), encoding: .utf8)
                    .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                let diffs = selectionEval.map { ($0["loss"] as! Double) - ($0["loss_against"] as! Double) }
                #expect(abs((selection["diff"] as? Double ?? .nan) - diffs.reduce(0, +) / Double(diffs.count)) < 1e-12)
                // The random candidate of each paired prompt, against the chosen student on the same records.
                let randomEval = try String(contentsOfFile: dir.path("exp/round-1/eval-selection-random.jsonl"), encoding: .utf8)
                    .split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
                let fromRandom = zip(selectionEval, randomEval).map { ($0["loss"] as! Double) - ($1["loss"] as! Double) }
                let versusRandom = selection["chosen_vs_random"] as? [String: Any]
                #expect(abs((versusRandom?["diff"] as? Double ?? .nan) - fromRandom.reduce(0, +) / Double(fromRandom.count)) < 1e-12)
                #expect(
                    try String(contentsOfFile: dir.path("exp/summary.md"), encoding: .utf8).contains("selection check: student on the pairs' chosen"))
            }
            #expect(ran.contains("round-1/eval-selection") == rank)
            // dpo.nll_weight reaches both DPO runs: their metrics carry the chosen side's NLL.
            for metrics in ["dpo-metrics", "dpo-control-metrics"] {
                let steps = try String(contentsOfFile: dir.path("exp/round-1/\(metrics).jsonl"), encoding: .utf8).split(separator: "\n")
                    .filter { !$0.contains("dpo-heldout") }
                #expect(!steps.isEmpty && steps.allSatisfy { $0.contains("\"chosen_nll\"") == (name == "experiment-rpo") }, "\(metrics)")
            }
            for label in ["montessori", "baseline"] + (influence ? [] : ["control"]) {
                // training.records: records, or (chosen, influence) prompts with one record each.
                #expect(
                    try zcat(dir.path("exp/round-1/train-\(label).jsonl.gz")).split(separator: "\n").count == (chosen || influence ? 3 : 5),
                    "\(label)")
            }
            #expect(FileManager.default.fileExists(atPath: dir.path("exp/round-1/train-control.jsonl.gz")) == !influence)
        }
        #expect(FileManager.default.fileExists(atPath: dir.path("exp/round-1/teacher-control/model.safetensors")))
        let summary = try String(contentsOfFile: dir.path("exp/summary.md"), encoding: .utf8)
        #expect(summary.contains("mean fresh influence, montessori − original"))
        try checkReport(dir, scored: try zcat(dir.path("exp/round-1/scored.jsonl.gz")).split(separator: "\n").count, influence: influence)
    }

    /// RUN/report.html of the experiment run: well-formed, one SVG per chart, and the numbers drawn
    /// are the files' own; mi-report draws the same page again, and a partial page for a
    /// directory that lost files.
    func checkReport(_ dir: TempDir, scored: Int, influence: Bool) throws {
        let html = try Data(contentsOf: URL(fileURLWithPath: dir.path("exp/report.html")))
        let page = try ParsedPage(html)
        #expect(
            page.charts.keys.sorted()
                == ([
                    "dpo-accuracy-round-1", "dpo-loss-round-1", "dpo-reward-margin-round-1", "fresh-round-1", "heldout-round-1",
                    "influence-length-round-1", "influence-round-1", "sft-loss", "stages", "wall-time",
                ] + (influence ? ["influence-candidates-round-1"] : [])).sorted())
        if influence {
            // montessori_set: influence: the training candidates, all answered and probed, and the
            // DPO'd teacher's choice among them from result.json.
            let probed = try zcat(dir.path("exp/round-1/choose-scored.jsonl.gz")).split(separator: "\n").count
            #expect(page.charts["influence-candidates-round-1"]?.barValues.reduce(0, +) == Double(probed))
            let row = page.rows.first { $0.first == "round 1: training candidates, all probed" }
            #expect(row?[4] == String(probed), "\(String(describing: row))")
            #expect(page.rows.contains { $0.first == "montessori teacher's choice of the original's training candidates: influence − prompt mean" })
        }
        #expect(page.charts["influence-round-1"]?.barValues.reduce(0, +) == Double(scored), "histogram counts sum to the probed records")
        #expect(page.charts["influence-length-round-1"]?.circles == scored)
        let ledger = try FileManager.default.contentsOfDirectory(atPath: dir.path("exp/.mi-run/steps")).filter { $0.hasSuffix(".json") }
        // Measured and predicted (the plan ran before) bars for every step.
        #expect(page.charts["wall-time"]?.barValues.count == 2 * ledger.count)
        // Records per stage: the probing set's answered count is its file's line count.
        let answered = try zcat(dir.path("exp/round-1/probe-answered.jsonl.gz")).split(separator: "\n").count
        let row = page.rows.first { $0.first == "round 1: probing set" }
        #expect(row?[3] == String(answered) && row?[4] == String(scored))
        #expect(page.links.contains("round-1/scored.jsonl.gz") && page.links.contains("result.json"))
        // The result table carries result.json's students_vs_start.
        let result = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path("exp/result.json")))) as! [String: Any]
        let fromStart = (result["students_vs_start"] as? [String: Any])?["baseline"] as? [String: Any]
        let startRow = page.rows.first { $0.first == "baseline student − its start" }
        // (Foundation's JSON parser may round the last digit differently from Double's.)
        let shown = startRow.flatMap { Double($0[1]) }, written = fromStart?["diff"] as? Double
        #expect(shown != nil && written != nil && abs(shown! - written!) <= 1e-12 * abs(written!), "\(String(describing: startRow))")
        #expect(page.links.allSatisfy { FileManager.default.fileExists(atPath: dir.path("exp/" + $0)) })
        #expect(page.externalReferences.isEmpty, "nothing fetched")

        let again = try run("mi-report", [dir.path("exp"), "-o", "-"])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(Data(again.stdout) == html)
        try FileManager.default.removeItem(atPath: dir.path("exp/round-1/eval.jsonl"))
        let partial = try run("mi-report", [dir.path("exp"), "-o", "-"])
        #expect(partial.status == 0, "\(partial.stderr)")
        let charts = try ParsedPage(Data(partial.stdout)).charts
        #expect(charts["heldout-round-1"] == nil && charts["influence-round-1"] != nil)
        let none = try run("mi-report", [dir.path("nothing-here")])
        #expect(none.status == 66 && none.stderr.contains("not a run directory"))
    }
}

/// What the report tests read out of a page: each chart's bars and dots, table rows, links.
final class ParsedPage: NSObject, XMLParserDelegate {
    struct Chart {
        var barValues: [Double] = []
        var circles = 0
    }

    var charts: [String: Chart] = [:]
    var rows: [[String]] = []
    var links: [String] = []
    var externalReferences: [String] = []
    var text = ""
    private var chart: String?
    private var row: [String]?
    private var cell: String?

    init(_ data: Data) throws {
        super.init()
        let parser = XMLParser(data: data)
        parser.delegate = self
        guard parser.parse() else { throw parser.parserError ?? CocoaError(.fileReadCorruptFile) }
    }

    func parser(
        _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]
    ) {
        switch name {
        case "svg":
            chart = attributes["data-chart"]
            if let chart { charts[chart] = Chart() }
        case "rect" where attributes["class"] == "bar":
            if let chart, let v = attributes["data-value"].flatMap(Double.init) { charts[chart]!.barValues.append(v) }
        case "circle": if let chart { charts[chart]!.circles += 1 }
        case "tr": row = []
        case "td": cell = ""
        case "a": if let href = attributes["href"] { links.append(href) }
        default: break
        }
        for (key, value) in attributes where (key == "href" || key == "src") && value.contains("://") { externalReferences.append(value) }
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        switch name {
        case "svg": chart = nil
        case "td":
            row?.append(cell ?? "")
            cell = nil
        case "tr":
            if let row, !row.isEmpty { rows.append(row) }
            row = nil
        default: break
        }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        text += string
        if cell != nil { cell! += string }
    }
}
