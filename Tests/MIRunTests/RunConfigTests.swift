import Foundation
import MIRun
import MIStream
import Testing

/// Config keys that reach every tool.
@Suite struct RunConfigTests {
    func config(_ yaml: String) throws(ConfigError) -> RunConfig {
        let minimal = "teacher: t.gguf\nseeds: s.jsonl\nreference: r.jsonl\n"
        return try RunConfig(try ConfigNode.parse(yaml: minimal + yaml, file: "c.yaml"), base: "/configs")
    }

    @Test func chatTemplateIsAFormatNameOrAFileBesideTheConfig() throws {
        #expect(try config("").chatTemplate == nil)
        #expect(try config("chat_template: zephyr\n").chatTemplate == "zephyr")
        #expect(try config("chat_template: templates/mine.jinja\n").chatTemplate == "/configs/templates/mine.jinja")
        #expect(throws: ConfigError.self) { try config("chat_template: [a, b]\n") }
        // Per tool it is mi-run's to set, so the stages cannot disagree.
        #expect {
            try config("training:\n  sft: {chat_template: chatml}\n")
        } throws: { "\($0)".contains("training.sft.chat_template is set by mi-run itself") }
    }

    @Test func aPhaseMayAskForARecordCount() throws {
        #expect(try config("").training.records == nil)
        let c = try config("training:\n  records: 1000\n  generate: {prompts: 640}\nprobing: {records: 500}\n")
        #expect(c.training.records == 1000 && c.probing.records == 500 && c.training.generate.value("prompts") == "640")
        for text in ["training: {records: 0}\n", "training: {records: many}\n"] {
            #expect { try config(text) } throws: { "\($0)".contains("training.records must be an integer ≥ 1") }
        }
    }

    @Test func theCrossedMechanismNeedsFreshCandidates() throws {
        #expect(try config("").experiment.mechanismCrossed == false)
        #expect(try config("experiment: {mechanism_prompts: 8, mechanism_crossed: true}\n").experiment.mechanismCrossed)
        #expect {
            try config("experiment: {mechanism_crossed: true}\n")
        } throws: { "\($0)".contains("experiment.mechanism_crossed needs experiment.mechanism_prompts > 0") }
        #expect { try config("experiment: {mechanism_prompts: 8, mechanism_crossed: 2}\n") } throws: { "\($0)".contains("must be true or false") }
    }

    @Test func aStudentMayBeCutToSomeBlocks() throws {
        #expect(try config("").studentLayers == nil)
        #expect(try config("student_layers: 0-4,6-14,29\n").studentLayers == "0-4,6-14,29")
        for text in ["student_layers: 3-1\n", "student_layers: [1, 2]\n", "student_layers: 1,1\n"] {
            #expect { try config(text) } throws: { "\($0)".contains("student_layers must list blocks to keep") }
        }
    }

    @Test func theOriginalTeacherMayAnswerEveryTeachersInstructions() throws {
        #expect(try config("").responder == .teacher)
        #expect(try config("responder: original\n").responder == .original)
        for text in ["responder: student\n", "responder: [original]\n"] {
            #expect { try config(text) } throws: { "\($0)".contains("c.yaml:4") && "\($0)".contains("responder must be teacher or original") }
        }
        // The crossing answers each teacher's instructions by the other: nothing to cross when one teacher answers all.
        #expect(try config("responder: original\nexperiment: {mechanism_prompts: 8}\n").experiment.mechanismPrompts == 8)
        #expect {
            try config("responder: original\nexperiment: {mechanism_prompts: 8, mechanism_crossed: true}\n")
        } throws: { "\($0)".contains("experiment.mechanism_crossed needs responder: teacher") }
    }

    @Test func theUpdatedTeacherMayChooseInsteadOfWrite() throws {
        #expect(try config("").montessoriSet == .written)
        #expect(try config("montessori_set: chosen\n").montessoriSet == .chosen)
        #expect(try config("montessori_set: influence\n").montessoriSet == .influence)
        for text in ["montessori_set: picked\n", "montessori_set: {chosen: 1}\n"] {
            #expect { try config(text) } throws: {
                "\($0)".contains("c.yaml:4") && "\($0)".contains("montessori_set must be written, chosen or influence")
            }
        }
        #expect { try config("montessori_set: influence\nexperiment: {control: true, control_student: true}\n") } throws: {
            "\($0)".contains("experiment.control_student needs montessori_set: written or chosen")
        }
        for set in ["chosen", "influence"] {
            #expect { try config("montessori_set: \(set)\nrounds: 2\n") } throws: {
                "\($0)".contains("c.yaml:4") && "\($0)".contains("montessori_set: \(set) needs rounds: 1")
            }
        }
    }
}

@Suite struct SlurmConfigTests {
    func config(_ extra: String) throws -> RunConfig {
        let text = "teacher: t.gguf\nseeds: s.jsonl\nreference: r.jsonl\n" + extra
        return try RunConfig(try ConfigNode.parse(yaml: text, file: "c.yaml"), base: "/configs")
    }

    @Test func executorAndSlurmSettingsAreRead() throws {
        let local = try config("")
        #expect(local.executor == .local && local.respondShards == 1 && local.slurm.retries == 2 && local.slurm.serialSteps == .local)
        let c = try config(
            """
            executor: slurm
            respond_shards: 2
            slurm: {partition: gpu, time: "1:00:00", cpus_per_task: 4, extra: [--mem=8G, --account=lab], retries: 0, serial_steps: slurm}

            """)
        #expect(c.executor == .slurm && c.respondShards == 2)
        #expect(c.slurm.partition == "gpu" && c.slurm.time == "1:00:00" && c.slurm.cpusPerTask == 4)
        #expect(c.slurm.extra == ["--mem=8G", "--account=lab"] && c.slurm.retries == 0 && c.slurm.serialSteps == .slurm)
        #expect(try config("slurm: {extra: --exclusive}\n").slurm.extra == ["--exclusive"])
    }

    @Test func badSlurmSettingsNameTheirPlace() throws {
        for (text, message) in [
            ("executor: cloud\n", "c.yaml:4:"),
            ("executor: cloud\n", "executor must be local or slurm"),
            ("respond_shards: 0\n", "respond_shards must be an integer ≥ 1"),
            ("slurm: {nodes: 2}\n", "unknown key \"slurm.nodes\""),
            ("slurm: {retries: -1}\n", "slurm.retries must be an integer ≥ 0"),
            ("slurm: {serial_steps: cloud}\n", "slurm.serial_steps must be local or slurm"),
            ("slurm: {extra: [{a: 1}]}\n", "slurm.extra must list sbatch arguments"),
            ("respond:\n  shard: 1/2\n", "unknown key"),
        ] {
            #expect { try config(text) } throws: { "\($0)".contains(message) }
        }
        #expect { try config("sampling: {shard: 0/2}\n") } throws: { "\($0)".contains("sampling.shard is set by mi-run itself") }
    }

    @Test func taskListsAndShellWords() {
        #expect(SlurmExecutor.list([0, 1, 2]) == "0-2")
        #expect(SlurmExecutor.list([1, 3]) == "1,3")
        #expect(SlurmExecutor.list([2]) == "2")
        #expect(SlurmExecutor.quoted("it's a $path") == #"'it'\''s a $path'"#)
        let script = SlurmExecutor.script([(1, ["/bin/tool", "--x=a b"])], environment: ["K": "v", "OPENBLAS_NUM_THREADS": "9"], exitFiles: "/r/s")
        #expect(script.contains("1) set -- '/bin/tool' '--x=a b' ;;"))
        #expect(script.contains(#"export K="${K:-'v'}""#) && !script.contains("9"))
        #expect(script.contains("mv -f '/r/s'/task-$SLURM_ARRAY_TASK_ID.exit.tmp '/r/s'/task-$SLURM_ARRAY_TASK_ID.exit"))
    }
}

/// The reference set's split into the probe's part and the held-out part.
@Suite struct ReferenceSplitTests {
    @Test func heldOutRecordsAreTheLastOnesOrSpreadEvenly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("split-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = dir.appendingPathComponent("ref.jsonl").path
        try (0..<10).map { #"{"id":"r\#($0)","instruction":"i","response":"r"}"# + "\n" }.joined()
            .write(toFile: reference, atomically: true, encoding: .utf8)
        func ids(_ path: String) throws -> [String] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { String($0.split(separator: "\"")[3]) }
        }
        let probe = dir.appendingPathComponent("probe.jsonl").path, heldout = dir.appendingPathComponent("heldout.jsonl").path
        let tail = try MontessoriRun.split(reference, fraction: 0.3, probe: probe, heldout: heldout)
        #expect(try ids(heldout) == ["r7", "r8", "r9"] && ids(probe).count == 7)
        #expect(tail["heldout"] == .number(JSONNumber(3)))
        _ = try MontessoriRun.split(reference, fraction: 0.3, spread: true, probe: probe, heldout: heldout)
        #expect(try ids(heldout) == ["r3", "r6", "r9"])
        #expect(try ids(probe) == ["r0", "r1", "r2", "r4", "r5", "r7", "r8"])
        #expect(throws: ConfigError.self) { try RunConfigTests().config("heldout_split: middle\n") }
        #expect(try RunConfigTests().config("heldout_split: spread\n").heldoutSpread)
        #expect(throws: ConfigError.self) { try RunConfigTests().config("heldout: h.jsonl\nheldout_split: spread\n") }
    }
}
