import MIStream

/// Preference pairs for the teacher from scored candidates of the same prompt. The paper's rule
/// (`all`, `best-worst`): chosen has positive influence, rejected negative. `rank` ignores the
/// sign: the most influential candidate of a prompt against the least (with `minMargin`), which
/// still pairs a prompt whose candidates all lie on one side of zero. The prompt is the
/// generation prompt and chosen/rejected are the teacher's raw outputs.
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

    public init() {}

    public struct Candidate {
        public let id: String
        public let prompt: String
        public let raw: String
        public let influence: Double
        public let object: JSONObject
    }

    public static func candidate(_ o: JSONObject, fallbackID: String) throws(FieldError) -> Candidate {
        Candidate(
            id: (try? o.string("id")) ?? fallbackID, prompt: try o.string("prompt"), raw: try o.string("raw"),
            influence: try o.double("influence"), object: o)
    }

    /// Pairs of one prompt's candidates, largest margin first (ties: input order).
    public func pairs(_ group: [Candidate], promptID: String) -> [JSONObject] {
        let chosen = group.enumerated().filter { $0.element.influence > 0 }
        let rejected = group.enumerated().filter { $0.element.influence < 0 }
        var combos: [(Int, Int, Double)] = []
        switch mode {
        case .all:
            for c in chosen { for r in rejected { combos.append((c.offset, r.offset, c.element.influence - r.element.influence)) } }
        case .bestWorst:
            if let c = chosen.max(by: { $0.element.influence < $1.element.influence }),
                let r = rejected.min(by: { $0.element.influence < $1.element.influence })
            {
                combos.append((c.offset, r.offset, c.element.influence - r.element.influence))
            }
        case .rank:
            let indexed = Array(group.enumerated())
            // First of equal maxima and last of equal minima: ties keep input order.
            if indexed.count >= 2, let c = indexed.max(by: { $0.element.influence < $1.element.influence }),
                let r = indexed.reversed().min(by: { $0.element.influence < $1.element.influence }),
                c.element.influence > r.element.influence
            {
                combos.append((c.offset, r.offset, c.element.influence - r.element.influence))
            }
        }
        combos = combos.filter { $0.2 >= minMargin }
        combos.sort { $0.2 > $1.2 || ($0.2 == $1.2 && ($0.0, $0.1) < ($1.0, $1.1)) }
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
}
