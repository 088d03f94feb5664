import MIStream

#if canImport(Glibc)
    import Glibc
#endif

/// Preference pairs for the teacher from scored candidates of the same prompt. The paper's rule
/// (`all`, `best-worst`): chosen has positive influence, rejected negative. `rank` ignores the
/// sign: the most influential candidate of a prompt against the least (with `minMargin`), which
/// still pairs a prompt whose candidates all lie on one side of zero. With `maxLengthRatio`, only
/// candidates whose responses are of similar length are compared (the longer at most that many
/// times the shorter, in characters), so a preference cannot be for length alone; `best-worst`
/// and `rank` then take the widest margin among such pairs. The prompt is the generation prompt
/// and chosen/rejected are the teacher's raw outputs. With `lengthFit`, candidates are compared by
/// their influence minus what their response length predicts (a least-squares line on the log of
/// the length, fitted over the whole input), so every pair is kept and none is for length alone.
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
    /// Compare influence less the part the response's length explains (nil: influence as it is).
    public var lengthFit: LengthFit?

    public init() {}

    /// The least-squares line of influence on ln(response characters) over a set of candidates.
    public struct LengthFit: Sendable {
        public private(set) var count = 0
        var sx = 0.0, sy = 0.0, sxx = 0.0, sxy = 0.0, syy = 0.0

        public init() {}

        /// The line over `points`, each an influence and its response's length in characters.
        public init(_ points: some Sequence<(Double, Int)>) {
            for (influence, length) in points { add(influence: influence, length: length) }
        }

        static func x(_ length: Int) -> Double { log(Double(max(length, 1))) }

        public mutating func add(influence y: Double, length: Int) {
            let x = Self.x(length)
            count += 1
            sx += x
            sy += y
            sxx += x * x
            sxy += x * y
            syy += y * y
        }

        var sxxCentred: Double { sxx - sx * sx / Double(count) }

        /// Influence per unit of ln(length); 0 when the lengths do not vary.
        public var slope: Double {
            guard count > 1, sxxCentred > 0 else { return 0 }
            return (sxy - sx * sy / Double(count)) / sxxCentred
        }

        public var intercept: Double { count == 0 ? 0 : (sy - slope * sx) / Double(count) }

        /// Pearson correlation of influence with ln(length).
        public var correlation: Double {
            let syyCentred = syy - sy * sy / Double(max(count, 1))
            guard count > 1, sxxCentred > 0, syyCentred > 0 else { return 0 }
            return (sxy - sx * sy / Double(count)) / (sxxCentred * syyCentred).squareRoot()
        }

        /// Influence less the line's value at this length.
        public func residual(influence: Double, length: Int) -> Double { influence - intercept - slope * Self.x(length) }
    }

    /// What pairs are decided by: the influence, or its residual under `lengthFit`.
    func score(_ c: Candidate) -> Double { lengthFit.map { $0.residual(influence: c.influence, length: c.responseLength) } ?? c.influence }

    public struct Candidate {
        public let id: String
        public let prompt: String
        public let raw: String
        public let influence: Double
        /// Characters (Unicode scalars) of the response; read only when pairs are length-limited.
        public let responseLength: Int
        public let object: JSONObject
    }

    /// How long an answer is, wherever answer lengths are compared: its characters (Unicode scalars).
    public static func characters(_ response: String) -> Int { response.unicodeScalars.count }

    /// A record's answer length (`characters` of its `response`); nil without one.
    public static func responseCharacters(_ record: JSONObject) -> Int? {
        guard case .string(let response)? = record["response"] else { return nil }
        return characters(response)
    }

    /// `needsLength`: the response is read (a required field) for `maxLengthRatio`.
    public static func candidate(_ o: JSONObject, fallbackID: String, needsLength: Bool = false) throws(FieldError) -> Candidate {
        Candidate(
            id: (try? o.string("id")) ?? fallbackID, prompt: try o.string("prompt"), raw: try o.string("raw"),
            influence: try o.double("influence"), responseLength: needsLength ? characters(try o.string("response")) : 0,
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
        let scores = group.map(score)
        let chosen = group.indices.filter { scores[$0] > 0 }
        let rejected = group.indices.filter { scores[$0] < 0 }
        var combos: [(Int, Int, Double)] = []
        func add(_ c: Int, _ r: Int) {
            if comparable(group[c], group[r]) { combos.append((c, r, scores[c] - scores[r])) }
        }
        switch mode {
        case .all, .bestWorst:
            for c in chosen { for r in rejected { add(c, r) } }
            if mode == .bestWorst, let best = combos.min(by: Self.wider) { combos = [best] }
        case .rank:
            for c in group.indices { for r in group.indices where scores[c] > scores[r] { add(c, r) } }
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
            if lengthFit != nil {
                o["chosen_adjusted_influence"] = JSONNumber.value(scores[ci])
                o["rejected_adjusted_influence"] = JSONNumber.value(scores[ri])
            }
            return o
        }
    }

    /// Wider margin first; of equal margins, input order.
    static func wider(_ x: (Int, Int, Double), _ y: (Int, Int, Double)) -> Bool {
        x.2 > y.2 || (x.2 == y.2 && (x.0, x.1) < (y.0, y.1))
    }
}
