import MIStream

/// Preference pairs for the teacher from scored candidates of the same prompt. The paper's rule
/// (`all`, `best-worst`): chosen has positive influence, rejected negative. `rank` ignores the
/// sign: the most influential candidate of a prompt against the least (with `minMargin`), which
/// still pairs a prompt whose candidates all lie on one side of zero. With `maxLengthRatio`, only
/// candidates whose responses are of similar length are compared (the longer at most that many
/// times the shorter, in characters), so a preference cannot be for length alone; `best-worst`
/// and `rank` then take the widest margin among such pairs. The prompt is the generation prompt
/// and chosen/rejected are the teacher's raw outputs.
public struct Pairing {
    public enum Mode: String, Sendable {
        case all
        case bestWorst = "best-worst"
        case rank
    }

    public var mode = Mode.all
    public var minMargin = 0.0
    /// 0: no limit.
    public var maxPairsPerPrompt = 0
    /// 0: no limit; else at least 1.
    public var maxLengthRatio = 0.0

    public init() {}

    public struct Candidate {
        public let id: String
        public let prompt: String
        public let raw: String
        public let influence: Double
        /// Characters (Unicode scalars) of the response; read only when pairs are length-limited.
        public let responseLength: Int
        public let object: JSONObject
    }

    /// `needsLength`: the response is read (a required field) for `maxLengthRatio`.
    public static func candidate(_ o: JSONObject, fallbackID: String, needsLength: Bool = false) throws(FieldError) -> Candidate {
        Candidate(
            id: (try? o.string("id")) ?? fallbackID, prompt: try o.string("prompt"), raw: try o.string("raw"),
            influence: try o.double("influence"), responseLength: needsLength ? try o.string("response").unicodeScalars.count : 0,
            object: o)
    }

    /// Whether two candidates may form a pair under `maxLengthRatio`.
    func comparable(_ a: Candidate, _ b: Candidate) -> Bool {
        guard maxLengthRatio > 0 else { return true }
        let short = Double(min(a.responseLength, b.responseLength)), long = Double(max(a.responseLength, b.responseLength))
        return long <= maxLengthRatio * max(short, 1)
    }

    /// Pairs of one prompt's candidates, largest margin first (ties: input order).
    public func pairs(_ group: [Candidate], promptID: String) -> [JSONObject] {
        let chosen = group.indices.filter { group[$0].influence > 0 }
        let rejected = group.indices.filter { group[$0].influence < 0 }
        var combos: [(Int, Int, Double)] = []
        func add(_ c: Int, _ r: Int) {
            if comparable(group[c], group[r]) { combos.append((c, r, group[c].influence - group[r].influence)) }
        }
        switch mode {
        case .all, .bestWorst:
            for c in chosen { for r in rejected { add(c, r) } }
            if mode == .bestWorst, let best = combos.min(by: Self.wider) { combos = [best] }
        case .rank:
            for c in group.indices { for r in group.indices where group[c].influence > group[r].influence { add(c, r) } }
            // Of equal margins: the first of equal maxima against the last of equal minima (input order).
            if let best = combos.min(by: { $0.2 > $1.2 || ($0.2 == $1.2 && ($0.0 < $1.0 || ($0.0 == $1.0 && $0.1 > $1.1))) }) {
                combos = [best]
            }
        }
        combos = combos.filter { $0.2 >= minMargin }
        combos.sort(by: Self.wider)
        if maxPairsPerPrompt > 0 && combos.count > maxPairsPerPrompt { combos.removeLast(combos.count - maxPairsPerPrompt) }
        return combos.map { ci, ri, _ in
            let c = group[ci], r = group[ri]
            var o = JSONObject()
            o["prompt"] = .string(c.prompt)
            o["chosen"] = .string(c.raw)
            o["rejected"] = .string(r.raw)
            o["chosen_influence"] = JSONNumber(c.influence).map(JSONValue.number) ?? .null
            o["rejected_influence"] = JSONNumber(r.influence).map(JSONValue.number) ?? .null
            o["prompt_id"] = .string(promptID)
            o["chosen_id"] = .string(c.id)
            o["rejected_id"] = .string(r.id)
            return o
        }
    }

    /// Wider margin first; of equal margins, input order.
    static func wider(_ x: (Int, Int, Double), _ y: (Int, Int, Double)) -> Bool {
        x.2 > y.2 || (x.2 == y.2 && (x.0, x.1) < (y.0, y.1))
    }
}
