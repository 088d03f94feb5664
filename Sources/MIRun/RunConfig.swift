import MICore

#if canImport(Glibc)
    import Glibc
#endif

/// The loop's configuration, like the paper's project config: models, data, sizes of each phase and
/// the flags of each stage. A stage section maps option names to values and becomes that stage's
/// flags (`batch_size: 2` → `--batch-size=2`, `true` → `--flag`, `false` leaves it out), so every
/// flag of a stage can be set without mi-run knowing it. Paths are relative to the config file.
public struct RunConfig: Sendable {
    /// One stage's flags, in the order written.
    public struct Options: Sendable {
        public var entries: [(key: String, value: ConfigNode)] = []
        public init() {}

        public func arguments() -> [String] {
            entries.flatMap { key, value -> [String] in
                let flag = "--" + key.replacingAll("_", with: "-")
                switch value.kind {
                case .null: return []
                // false leaves the flag out (every tool's flags default to off).
                case let .bool(b): return b ? [flag] : []
                // One argument, so a value starting with "-" is not read as an option.
                case let .scalar(s): return [flag + "=" + s]
                case .mapping, .sequence: return []
                }
            }
        }

        public func has(_ key: String) -> Bool { entries.contains { $0.key == key } }

        /// The scalar value of `key`, if set to one.
        public func value(_ key: String) -> String? {
            guard let node = entries.last(where: { $0.key == key })?.value, case let .scalar(s) = node.kind else { return nil }
            return s
        }

        /// Entries of `defaults` not set here, then these.
        public func over(_ defaults: Options) -> Options {
            var o = Options()
            o.entries = defaults.entries.filter { d in !has(d.key) } + entries
            return o
        }

        public var canonical: String { ConfigNode(.mapping(entries), location: "").canonical }

        /// These options with each of `values` set where its key stands (or appended).
        public func setting(_ values: [(String, String)]) -> Options {
            var o = self
            for (key, value) in values {
                let node = ConfigNode(.scalar(value), location: "")
                if let at = o.entries.lastIndex(where: { $0.key == key }) { o.entries[at].value = node } else { o.entries.append((key, node)) }
            }
            return o
        }
    }

    /// Generate, dedupe and answer a set of instructions, then train on it (warm-up, training) or
    /// probe with it (probing).
    public struct Phase: Sendable {
        public var generate = Options()
        public var respond = Options()
        public var learn = Options()
        /// `records: N`: generate (continuing the generate step as often as needed) until N
        /// instructions are left after deduplication, and answer the first N; unset: the
        /// instructions of `generate.prompts` prompts, however many they are.
        public var records: Int?
    }

    public var teacher: String
    public var student: String
    public var seeds: String
    public var reference: String
    public var heldout: String?
    public var heldoutFraction = 1.0 / 3.0
    /// Which records of the reference set are held out: the last ones, or spread evenly through it
    /// (for a file in blocks, such as one source after another).
    public var heldoutSpread = false
    public var rounds = 1
    /// The probe as this many processes (`mi-probe --shard k/N`), each with its share of the cores.
    public var probeShards = 1
    /// The respond steps as this many processes (`mi-respond --shard k/N`), merged back in input order.
    public var respondShards = 1
    /// Where the tools run: child processes of mi-run, or Slurm jobs (`executor: slurm`).
    public enum Executor: String, Sendable, CaseIterable { case local, slurm }
    public var executor = Executor.local
    public var slurm = Slurm()

    /// The `slurm:` section: how jobs are submitted when `executor: slurm`.
    public struct Slurm: Sendable {
        /// `--partition`, `--time` and `--cpus-per-task` of every job; unset: the cluster's defaults.
        public var partition: String?
        public var time: String?
        public var cpusPerTask: Int?
        /// More sbatch arguments, as written (`--mem=8G`, `--account=x`).
        public var extra: [String] = []
        /// A failed or vanished task is resubmitted this many times before the step fails.
        public var retries = 2
        /// Whether the steps that are one process (generate, dedupe, pair, DPO, SFT, eval) run as
        /// one job each too, or here.
        public var serialSteps = Executor.local
        /// Seconds between looks at the queue.
        public var poll = 2.0
    }
    public var seed = 1
    public var runDir: String?
    public var sampling = Options()
    public var dedupe = Options()
    /// nil: the student is used as it is (`warmup: false`).
    public var warmup: Phase? = Phase()
    public var probing = Phase()
    public var pair = Options()
    public var dpo = Options()
    public var training = Phase()
    public var eval = Options()
    /// `compute: f32 | bf16`, the products of every tool that runs a model (`--compute`); unset:
    /// MI_COMPUTE, else the fastest this CPU runs (bf16 with AMX, or AVX512-BF16 on AMD).
    public var compute: String?
    /// `chat_template: NAME | FILE`, the chat format of teacher and student when their own template
    /// is missing or unknown (`--chat-template` of every tool that formats a conversation).
    public var chatTemplate: String?
    /// A replacement executable per tool (`mi-probe: ./my-probe.sh`); it gets the same arguments.
    public var commands: [String: String] = [:]
    /// SFT and DPO see their data in an order shuffled with a seed derived from the run's
    /// (`--shuffle --seed`), unless a section sets `shuffle` or `seed` itself.
    public var shuffle = true
    /// Where round 1's Montessori and baseline students start.
    public enum StudentsStart: String, Sendable, CaseIterable {
        /// The warmed-up student, the one the probe measured influence on.
        case warmup
        /// The student as given (`student`), as the reference code trains its final students.
        case base
    }
    public var studentsStart = StudentsStart.warmup
    /// Who answers the instructions of the probing sets, the fresh candidates and the training sets.
    public enum Responder: String, Sendable, CaseIterable {
        /// The teacher that wrote them (the round's, the DPO'd or the control teacher).
        case teacher
        /// Always the original teacher: DPO changes only which instructions are written, so a
        /// side effect of the update on answering (e.g. shorter answers) cannot reach the data.
        case original
    }
    public var responder = Responder.teacher
    /// How the updated teacher makes the Montessori student's training set.
    public enum MontessoriSet: String, Sendable, CaseIterable {
        /// It writes the instructions (and, with `responder: teacher`, the answers): the paper's loop.
        case written
        /// It chooses: the original teacher writes the training prompts' candidates (the
        /// baseline's own generation), and of each prompt's candidates the updated teacher keeps
        /// the one its DPO implicit reward ranks first, log π_updated(instruction) −
        /// log π_original(instruction). The baseline keeps each prompt's first candidate (its
        /// samples come in random order), the control student the control teacher's choice, and the
        /// original teacher answers every set: the sets differ only in which candidate of each
        /// prompt they hold.
        case chosen
        /// The oracle of `chosen`, not the method: every candidate of the training prompts (the
        /// original teacher's, as in `chosen`) is answered by the original teacher and probed on
        /// the round's student as the probing set is, and the Montessori set keeps each prompt's
        /// most influential candidate; the baseline keeps the first. No teacher enters the choice,
        /// so there is no control student; it bounds what a teacher's choice can give the student.
        case influence
    }
    public var montessoriSet = MontessoriSet.written
    /// `student_layers`: the student is `student` (or the teacher) cut to these blocks, e.g.
    /// "0-4,6-14,16-24,26-29" (`mi-model export --layers`), a student weaker than its teacher.
    public var studentLayers: String?
    public var experiment = Experiment()

    /// Measurements beyond the loop itself, for showing that it works (all off by default).
    public struct Experiment: Sendable {
        /// Fresh candidates per teacher (prompts × samples) on the same prompts and sampling
        /// seeds, probed on the round's student: the updated teacher's against the original's.
        public var mechanismPrompts = 0
        public var mechanismSamples = 4
        /// Also the two crossings of the updated and the original teacher's fresh candidates: the
        /// updated teacher's instructions answered by the original teacher, and the original's
        /// instructions answered by the updated one, each probed like the others. They split the
        /// mechanism into what the instructions (what DPO trained) and what the answers add.
        public var mechanismCrossed = false
        /// A teacher DPO-trained on the same pairs with chosen and rejected assigned at random.
        public var control = false
        /// Also train and evaluate a student on the control teacher's data.
        public var controlStudent = false
        /// With a first-order probe: this fraction of the probing set also probed exactly, for
        /// the rank correlation of the two.
        public var exactFraction = 0.0
        /// The selection check (`SelectionCheck`): students trained on the pairs' chosen and on
        /// their rejected candidates, compared on the held-out set.
        public var selection = false
        public var enabled: Bool { mechanismPrompts > 0 || control || exactFraction > 0 || selection }
    }

    static let topLevel: Set<String> = [
        "teacher", "student", "seeds", "reference", "heldout", "heldout_fraction", "heldout_split", "rounds", "seed", "run_dir", "probe_shards",
        "respond_shards", "executor", "slurm",
        "sampling", "dedupe", "warmup", "probing", "pair", "dpo", "training", "eval", "commands",
        "shuffle", "students_start", "student_layers", "responder", "montessori_set", "experiment", "compute", "chat_template",
    ]
    /// Flags mi-run sets itself, per tool.
    static let reserved: [String: Set<String>] = [
        "mi-generate": ["teacher", "seeds", "out", "resume", "chat_template"],
        "mi-dedupe": ["against", "out"],
        "mi-respond": ["teacher", "out", "resume", "shard", "chat_template"],
        "mi-sft": ["model", "data", "out", "resume", "metrics", "save_optimizer", "chat_template"],
        "mi-probe": ["student", "reference", "out", "resume", "shard", "chat_template"],
        "mi-pair": ["out"],
        "mi-dpo": ["model", "pairs", "out", "resume", "metrics", "chat_template"],
        "mi-eval": ["model", "against", "data", "out", "chat_template"],
    ]

    /// Decodes a parsed file; `base` is the directory relative paths start from.
    public init(_ root: ConfigNode, base: String) throws(ConfigError) {
        guard case .mapping = root.kind else { throw ConfigError("\(root.location): the config must be a mapping") }
        for (key, value) in root.members where !Self.topLevel.contains(key) {
            throw ConfigError(
                "\(value.keyLocation ?? value.location): unknown key \"\(key)\" (known: \(Self.topLevel.sorted().joined(separator: ", ")))")
        }
        func path(_ key: String, required: Bool) throws(ConfigError) -> String? {
            guard let node = root[key], case let .scalar(s) = node.kind else {
                if let node = root[key], case .null = node.kind {
                } else if let node = root[key] {
                    throw ConfigError("\(node.location): \(key) must be a path")
                }
                if required { throw ConfigError("\(root.location): \"\(key)\" is required") }
                return nil
            }
            return try Self.resolve(try Self.expand(s, at: node.location), base: base)
        }
        teacher = try path("teacher", required: true)!
        student = try path("student", required: false) ?? teacher
        seeds = try path("seeds", required: true)!
        reference = try path("reference", required: true)!
        heldout = try path("heldout", required: false)
        runDir = try path("run_dir", required: false)
        if let n = root["heldout_fraction"] {
            guard case let .scalar(s) = n.kind, let f = Double(s), f > 0, f < 1 else {
                throw ConfigError("\(n.location): heldout_fraction must be a number between 0 and 1")
            }
            heldoutFraction = f
        }
        if let n = root["heldout_split"] {
            guard case let .scalar(s) = n.kind, ["tail", "spread"].contains(s) else {
                throw ConfigError("\(n.location): heldout_split must be tail or spread")
            }
            if heldout != nil { throw ConfigError("\(n.location): heldout_split splits the reference set, so it cannot go with heldout") }
            heldoutSpread = s == "spread"
        }
        if let n = root["rounds"] {
            guard case let .scalar(s) = n.kind, let r = Int(s), r >= 1 else { throw ConfigError("\(n.location): rounds must be an integer ≥ 1") }
            rounds = r
        }
        if let n = root["probe_shards"] {
            guard case let .scalar(s) = n.kind, let k = Int(s), k >= 1 else {
                throw ConfigError("\(n.location): probe_shards must be an integer ≥ 1")
            }
            probeShards = k
            if k > 1, probing.learn.has("bad_records") || root["probing"]?["probe"]?["bad_records"] != nil {
                throw ConfigError("\(n.location): probing.probe.bad_records cannot be used with probe_shards > 1")
            }
        }
        if let n = root["seed"] {
            guard case let .scalar(s) = n.kind, let r = Int(s), r >= 0 else { throw ConfigError("\(n.location): seed must be an integer ≥ 0") }
            seed = r
        }
        sampling = try Self.options(root["sampling"], name: "sampling", tools: ["mi-generate", "mi-respond"])
        dedupe = try Self.options(root["dedupe"], name: "dedupe", tools: ["mi-dedupe"])
        pair = try Self.options(root["pair"], name: "pair", tools: ["mi-pair"])
        dpo = try Self.options(root["dpo"], name: "dpo", tools: ["mi-dpo"])
        eval = try Self.options(root["eval"], name: "eval", tools: ["mi-eval"])
        if let w = root["warmup"], case .bool(false) = w.kind {
            warmup = nil
        } else {
            warmup = try Self.phase(root["warmup"], name: "warmup", learn: ("sft", "mi-sft"))
        }
        probing = try Self.phase(root["probing"], name: "probing", learn: ("probe", "mi-probe"))
        training = try Self.phase(root["training"], name: "training", learn: ("sft", "mi-sft"))
        if let n = root["shuffle"] {
            guard case let .bool(b) = n.kind else { throw ConfigError("\(n.location): shuffle must be true or false") }
            shuffle = b
        }
        try readStudent(root)
        if let n = root["chat_template"] {
            guard case let .scalar(s) = n.kind, !s.isEmpty else { throw ConfigError("\(n.location): chat_template must be a format name or a file") }
            let builtIn = ChatFormat.Style(rawValue: s) != nil
            chatTemplate = builtIn ? s : try Self.resolve(try Self.expand(s, at: n.location), base: base)
        }
        if let n = root["compute"] {
            guard case let .scalar(s) = n.kind, s == "f32" || s == "bf16" else { throw ConfigError("\(n.location): compute must be f32 or bf16") }
            compute = s
        }
        try readExperiment(root)
        if let c = root["commands"] { commands = try Self.commands(c, base: base) }
        try readExecution(root)
    }

    /// `experiment`, against the settings it depends on (read before it).
    mutating func readExperiment(_ root: ConfigNode) throws(ConfigError) {
        guard let e = root["experiment"] else { return }
        experiment = try Self.experiment(e)
        // With the original teacher answering every fresh set, the crossing's cells repeat
        // the plain ones, and the split would read the repeat as the updated teacher's answers.
        if experiment.mechanismCrossed && responder == .original {
            throw ConfigError("\(e.location): experiment.mechanism_crossed needs responder: teacher (with responder: original no answers differ)")
        }
        // The oracle's choice involves no teacher, so there is no control's choice to train on.
        if experiment.controlStudent && montessoriSet == .influence {
            throw ConfigError(
                "\(e.location): experiment.control_student needs montessori_set: written or chosen (influence has no control student)")
        }
    }

    /// `students_start`, `student_layers`, `responder` and `montessori_set`.
    mutating func readStudent(_ root: ConfigNode) throws(ConfigError) {
        if let n = root["students_start"] {
            studentsStart = try Self.choice(n, "students_start")
        }
        if let n = root["responder"] {
            responder = try Self.choice(n, "responder")
        }
        if let n = root["montessori_set"] {
            montessoriSet = try Self.choice(n, "montessori_set")
            // A later round's teacher is the last round's update, while the baseline's candidates
            // stay the original teacher's: a choice against the round's teacher would mix two teachers.
            if montessoriSet != .written && rounds > 1 {
                throw ConfigError("\(n.location): montessori_set: \(montessoriSet.rawValue) needs rounds: 1")
            }
        }
        if let n = root["student_layers"] {
            guard case let .scalar(s) = n.kind, (try? LlamaParameters.parseLayerList(s, layers: .max)) != nil else {
                throw ConfigError("\(n.location): student_layers must list blocks to keep, such as 0-13,29")
            }
            studentLayers = s
        }
    }

    /// One of `E`'s values, named by a scalar; else an error naming the place and the values.
    static func choice<E: RawRepresentable & CaseIterable>(_ n: ConfigNode, _ key: String) throws(ConfigError) -> E where E.RawValue == String {
        guard case let .scalar(s) = n.kind, let v = E(rawValue: s) else {
            let names = E.allCases.map(\.rawValue)
            throw ConfigError("\(n.location): \(key) must be \(names.dropLast().joined(separator: ", ")) or \(names.last!)")
        }
        return v
    }

    /// `respond_shards`, `executor` and `slurm`.
    mutating func readExecution(_ root: ConfigNode) throws(ConfigError) {
        if let n = root["respond_shards"] {
            guard case let .scalar(s) = n.kind, let k = Int(s), k >= 1 else {
                throw ConfigError("\(n.location): respond_shards must be an integer ≥ 1")
            }
            respondShards = k
        }
        if let n = root["executor"] { executor = try Self.choice(n, "executor") }
        if let n = root["slurm"] { slurm = try Self.slurm(n) }
    }

    /// The `experiment:` section.
    static func experiment(_ e: ConfigNode) throws(ConfigError) -> Experiment {
        guard case .mapping = e.kind else { throw ConfigError("\(e.location): experiment must be a mapping") }
        var experiment = Experiment()
        for (key, value) in e.members {
            func int(min: Int) throws(ConfigError) -> Int {
                guard case let .scalar(s) = value.kind, let i = Int(s), i >= min else {
                    throw ConfigError("\(value.location): experiment.\(key) must be an integer ≥ \(min)")
                }
                return i
            }
            func bool() throws(ConfigError) -> Bool {
                guard case let .bool(b) = value.kind else { throw ConfigError("\(value.location): experiment.\(key) must be true or false") }
                return b
            }
            switch key {
            case "mechanism_prompts": experiment.mechanismPrompts = try int(min: 0)
            case "mechanism_samples": experiment.mechanismSamples = try int(min: 1)
            case "mechanism_crossed": experiment.mechanismCrossed = try bool()
            case "control": experiment.control = try bool()
            case "control_student": experiment.controlStudent = try bool()
            case "selection": experiment.selection = try bool()
            case "exact_fraction":
                guard case let .scalar(s) = value.kind, let f = Double(s), f >= 0, f <= 1 else {
                    throw ConfigError("\(value.location): experiment.exact_fraction must be a number between 0 and 1")
                }
                experiment.exactFraction = f
            default:
                throw ConfigError(
                    "\(value.keyLocation ?? value.location): unknown key \"experiment.\(key)\" (known: control, control_student, exact_fraction, mechanism_crossed, mechanism_prompts, mechanism_samples, selection)"
                )
            }
        }
        if experiment.controlStudent && !experiment.control {
            throw ConfigError("\(e.location): experiment.control_student needs experiment.control: true")
        }
        if experiment.mechanismCrossed && experiment.mechanismPrompts == 0 {
            throw ConfigError("\(e.location): experiment.mechanism_crossed needs experiment.mechanism_prompts > 0")
        }
        return experiment
    }

    /// The `slurm:` section.
    static func slurm(_ node: ConfigNode) throws(ConfigError) -> Slurm {
        guard case .mapping = node.kind else { throw ConfigError("\(node.location): slurm must be a mapping") }
        var slurm = Slurm()
        for (key, value) in node.members {
            func scalar() throws(ConfigError) -> String {
                guard case let .scalar(s) = value.kind, !s.isEmpty else {
                    throw ConfigError("\(value.location): slurm.\(key) must be a single value")
                }
                return s
            }
            func int(min: Int) throws(ConfigError) -> Int {
                guard let i = Int(try scalar()), i >= min else { throw ConfigError("\(value.location): slurm.\(key) must be an integer ≥ \(min)") }
                return i
            }
            switch key {
            case "partition": slurm.partition = try scalar()
            case "time": slurm.time = try scalar()
            case "cpus_per_task": slurm.cpusPerTask = try int(min: 1)
            case "retries": slurm.retries = try int(min: 0)
            case "poll":
                guard let d = Double(try scalar()), d > 0 else { throw ConfigError("\(value.location): slurm.poll must be a number of seconds > 0") }
                slurm.poll = d
            case "serial_steps":
                guard let e = Executor(rawValue: try scalar()) else {
                    throw ConfigError("\(value.location): slurm.serial_steps must be local or slurm")
                }
                slurm.serialSteps = e
            case "extra":
                switch value.kind {
                case let .scalar(s): slurm.extra = [s]
                case let .sequence(items):
                    for item in items {
                        guard case let .scalar(s) = item.kind else { throw ConfigError("\(item.location): slurm.extra must list sbatch arguments") }
                        slurm.extra.append(s)
                    }
                default: throw ConfigError("\(value.location): slurm.extra must list sbatch arguments")
                }
            default:
                throw ConfigError(
                    "\(value.keyLocation ?? value.location): unknown key \"slurm.\(key)\" (known: cpus_per_task, extra, partition, poll, retries, serial_steps, time)"
                )
            }
        }
        return slurm
    }

    /// The `commands:` section: tool name → executable.
    static func commands(_ c: ConfigNode, base: String) throws(ConfigError) -> [String: String] {
        guard case .mapping = c.kind else { throw ConfigError("\(c.location): commands must map tool names to executables") }
        var commands: [String: String] = [:]
        for (tool, exe) in c.members {
            guard Self.reserved[tool] != nil else { throw ConfigError("\(exe.keyLocation ?? exe.location): unknown tool \"\(tool)\"") }
            guard case let .scalar(s) = exe.kind else { throw ConfigError("\(exe.location): \(tool) must be a path") }
            commands[tool] = try Self.resolve(try Self.expand(s, at: exe.location), base: base)
        }
        return commands
    }

    /// Reads a config file, applies `--set key.path=value` overrides (values are YAML scalars),
    /// and decodes it with paths relative to the file's directory.
    public static func load(path: String, overrides: [String] = []) throws(ConfigError) -> RunConfig {
        guard let text = Files.read(path) else { throw ConfigError("\(path): cannot read the file") }
        var root = try ConfigNode.parse(yaml: text, file: path)
        for o in overrides {
            guard let eq = o.firstIndex(of: "="), eq != o.startIndex else { throw ConfigError("--set \(o): expected key.path=value") }
            let text = String(o[o.index(after: eq)...])
            // An empty value unsets the key.
            let value = text.isEmpty ? ConfigNode(.null, location: "--set \(o[..<eq])") : try ConfigNode.parse(yaml: text, file: "--set \(o[..<eq])")
            try root.set(path: o[..<eq].split(separator: ".").map(String.init), to: value)
        }
        return try RunConfig(root, base: Files.directory(of: path))
    }

    static func phase(_ node: ConfigNode?, name: String, learn: (key: String, tool: String)) throws(ConfigError) -> Phase {
        var p = Phase()
        guard let node else { return p }
        if case .null = node.kind { return p }
        guard case .mapping = node.kind else { throw ConfigError("\(node.location): \(name) must be a mapping") }
        for (key, value) in node.members {
            switch key {
            case "generate": p.generate = try options(value, name: "\(name).generate", tools: ["mi-generate"])
            case "respond": p.respond = try options(value, name: "\(name).respond", tools: ["mi-respond"])
            case learn.key: p.learn = try options(value, name: "\(name).\(key)", tools: [learn.tool])
            case "records":
                guard case let .scalar(s) = value.kind, let n = Int(s), n >= 1 else {
                    throw ConfigError("\(value.location): \(name).records must be an integer ≥ 1")
                }
                p.records = n
            default:
                throw ConfigError(
                    "\(value.keyLocation ?? value.location): unknown key \"\(name).\(key)\" (known: generate, respond, \(learn.key), records)")
            }
        }
        return p
    }

    static func options(_ node: ConfigNode?, name: String, tools: [String]) throws(ConfigError) -> Options {
        var o = Options()
        guard let node else { return o }
        if case .null = node.kind { return o }
        guard case .mapping = node.kind else { throw ConfigError("\(node.location): \(name) must be a mapping of flags") }
        for (key, value) in node.members {
            for tool in tools where reserved[tool]!.contains(key) {
                throw ConfigError("\(value.keyLocation ?? value.location): \(name).\(key) is set by mi-run itself")
            }
            switch value.kind {
            case .mapping, .sequence: throw ConfigError("\(value.location): \(name).\(key) must be a single value")
            default: o.entries.append((key, value))
            }
        }
        return o
    }

    /// `~` and `$VAR` / `${VAR}` in paths.
    static func expand(_ s: String, at location: String) throws(ConfigError) -> String {
        var out = ""
        var chars = Array(s)
        if chars.first == "~", chars.count == 1 || chars[1] == "/" {
            guard let home = getenv("HOME") else { throw ConfigError("\(location): ~ without HOME") }
            out = String(cString: home)
            chars.removeFirst()
        }
        var i = 0
        while i < chars.count {
            guard chars[i] == "$", i + 1 < chars.count else {
                out.append(chars[i])
                i += 1
                continue
            }
            var name = ""
            if chars[i + 1] == "{" {
                guard let close = chars[(i + 2)...].firstIndex(of: "}") else { throw ConfigError("\(location): unclosed ${ in \"\(s)\"") }
                name = String(chars[(i + 2)..<close])
                i = close + 1
            } else {
                var j = i + 1
                while j < chars.count, chars[j] == "_" || chars[j].isLetter || chars[j].isNumber { j += 1 }
                name = String(chars[(i + 1)..<j])
                i = j
            }
            guard !name.isEmpty, let v = getenv(name) else { throw ConfigError("\(location): environment variable \"\(name)\" is not set") }
            out += String(cString: v)
        }
        return out
    }

    static func resolve(_ p: String, base: String) throws(ConfigError) -> String {
        if p.hasPrefix("/") || base.isEmpty || base == "." { return p }
        return base.hasSuffix("/") ? base + p : base + "/" + p
    }
}

extension String {
    func replacingAll(_ a: Character, with b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
