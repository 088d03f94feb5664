/// How far the influences measured on disjoint parts of the reference set agree
/// (`mi-probe --reference-parts K`): over records, the Pearson correlation of two parts'
/// influences (the mean over part pairs when K > 2), and, for what pairs are made of, how often
/// two records of one prompt are ordered the same way by two parts. A correlation near 0 says
/// the influence ranks candidates by the reference records drawn, not by the candidates.
public struct ReferencePartAgreement: Sendable {
    private var values: [[Double]] = []
    private var byPrompt: [String: [Int]] = [:]
    /// Response characters of each record, when every record gave one.
    private var lengths: [Int]? = []

    public init() {}

    public var records: Int { values.count }

    /// One record's influence on each part; `prompt` groups records for the within-prompt order;
    /// `responseLength` (characters, as mi-pair counts them) for `lengthAdjusted`.
    public mutating func add(parts: [Double], prompt: String?, responseLength: Int? = nil) {
        precondition(values.isEmpty || values[0].count == parts.count, "every record has the same number of parts")
        if let prompt { byPrompt[prompt, default: []].append(values.count) }
        values.append(parts)
        if let n = responseLength { lengths?.append(n) } else { lengths = nil }
    }

    /// The same agreement over what `mi-pair --length-adjust` decides pairs by: each part's
    /// influence less its own least-squares line on ln(response characters). Nil unless every
    /// record gave its response length.
    public var lengthAdjusted: ReferencePartAgreement? {
        guard let lengths, lengths.count == values.count, !values.isEmpty else { return nil }
        let k = values[0].count
        let fits = (0..<k).map { part in Pairing.LengthFit(zip(values.lazy.map { $0[part] }, lengths)) }
        var adjusted = self
        adjusted.values = zip(values, lengths).map { v, n in (0..<k).map { fits[$0].residual(influence: v[$0], length: n) } }
        adjusted.lengths = nil
        return adjusted
    }

    var partPairs: [(Int, Int)] {
        let k = values.first?.count ?? 0
        return (0..<k).flatMap { a in (a + 1..<max(k, a + 1)).map { (a, $0) } }
    }

    /// The mean over part pairs of the Pearson correlation across records (nil: fewer than 3
    /// records, one part, or a part with no spread).
    public var correlation: Double? {
        let pairs = partPairs
        guard values.count >= 3, !pairs.isEmpty else { return nil }
        var total = 0.0
        for (a, b) in pairs {
            guard let r = Evaluation.pearson(values.map { $0[a] }, values.map { $0[b] }) else { return nil }
            total += r
        }
        return total / Double(pairs.count)
    }

    /// Within-prompt record pairs whose order two parts agree on, over those both parts order
    /// (a tie in either part is not counted), summed over part pairs.
    public var withinPromptOrder: (agree: Int, pairs: Int) {
        var agree = 0, counted = 0
        for members in byPrompt.values where members.count > 1 {
            for (x, i) in members.enumerated() {
                for j in members[(x + 1)...] {
                    for (a, b) in partPairs {
                        let product = (values[i][a] - values[j][a]) * (values[i][b] - values[j][b])
                        if product == 0 { continue }
                        counted += 1
                        if product > 0 { agree += 1 }
                    }
                }
            }
        }
        return (agree, counted)
    }

    /// One line for the log.
    public var summary: String {
        let r =
            correlation.map { r -> String in
                let k = Double(values.first?.count ?? 1)
                // Spearman–Brown: the reliability of the whole set's influence from its parts'.
                let whole = k * r / (1 + (k - 1) * r)
                return "Pearson r \(Self.format(r)) between parts (Spearman–Brown for the whole reference set \(Self.format(whole)))"
            } ?? "no correlation (too few records or no spread)"
        let order = withinPromptOrder
        let share = order.pairs > 0 ? " (\(Self.format(Double(order.agree) / Double(order.pairs))))" : ""
        return "reference parts over \(records) records: \(r); within-prompt order agrees for \(order.agree) of \(order.pairs) pairs\(share)"
    }

    static func format(_ x: Double) -> String { String(Double((x * 1000).rounded()) / 1000) }
}
