/// Finds, for a new token list, whether some earlier list has ROUGE-L F above a threshold, and
/// answers exactly what comparing against every earlier list would, at a fraction of the cost.
///
/// Each list is seen as a set of elements (token, occurrence) so that set overlap is the multiset
/// overlap, which bounds the LCS. F > t needs an overlap above t·(m+n)/2, which is more than
/// t/(2−t) of each list's own size; so (prefix filtering) two such lists must share an element
/// among the first ⌊(1 − t/(2−t))·size⌋ + 1 of each, in one fixed global order. Only those
/// prefixes are indexed; candidates that meet are checked by the overlap bound, then by LCS.
/// The global order puts common English words last, so prefixes hold rare words and posting
/// lists stay short; any fixed order would give the same answers.
public final class NearDuplicateIndex {
    public let threshold: Double
    private var vocabulary: [Substring: Int32] = [:]
    private var entries: [[Int32]] = [] // token ids per indexed list
    private var sortedEntries: [[Int32]] = [] // the same ids sorted, for multiset overlaps
    private var stamps: [Int32] = [] // last query that reached each entry
    private var query: Int32 = 0
    private var postings: [UInt64: [Int32]] = [:] // element → entry indices
    private var exact: [[Int32]: Int] = [:] // identical token lists
    public private(set) var comparisons = 0

    public init(threshold: Double) { self.threshold = threshold }

    public var count: Int { entries.count }

    public func ids(_ tokens: [Substring]) -> [Int32] {
        tokens.map { t in
            if let id = vocabulary[t] { return id }
            let id = Int32(vocabulary.count)
            vocabulary[t] = id
            // Common words go last in the global order (ranks above every hashed rank).
            ranks.append(Self.commonWords[String(t)].map { 1 << 62 + UInt64(1024 - $0) << 8 } ?? hash(id))
            return id
        }
    }

    /// Position of each token id in the global order.
    private var ranks: [UInt64] = []
    private func rank(_ id: Int32) -> UInt64 { ranks[Int(id)] }

    private func hash(_ id: Int32) -> UInt64 {
        var z = UInt64(UInt32(bitPattern: id)) &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) >> 3
    }

    /// Elements (token, occurrence) in the global order, as keys.
    private func elements(_ tokens: [Int32]) -> [(order: UInt64, key: UInt64)] {
        var seen: [Int32: UInt32] = [:]
        var out: [(UInt64, UInt64)] = []
        out.reserveCapacity(tokens.count)
        for t in tokens {
            let k = seen[t, default: 0]
            seen[t] = k + 1
            out.append((rank(t) &+ UInt64(min(k, 255)), UInt64(UInt32(bitPattern: t)) << 32 | UInt64(k)))
        }
        return out.sorted { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
    }

    /// How many leading elements of a list of `n` must be indexed or probed.
    private func prefixLength(_ n: Int) -> Int {
        let t = threshold
        let minimumOverlapFraction = t / (2 - t)
        return min(n, Int((Double(n) * (1 - minimumOverlapFraction) + 1e-9).rounded(.down)) + 1)
    }

    public struct Match: Sendable {
        public let entry: Int
        public let score: Double
        public let exact: Bool
    }

    /// The earliest list (lowest index) scoring over the threshold, or an identical list; nil if none.
    public func find(_ tokens: [Int32]) -> Match? {
        if let e = exact[tokens] { return Match(entry: e, score: tokens.isEmpty ? 0 : 1, exact: true) }
        let m = tokens.count
        guard m > 0 else { return nil }
        // Entries sharing a prefix element, filtered by length: F ≤ 2·min(m, n)/(m + n).
        query &+= 1
        var candidates: [Int32] = []
        for (_, key) in elements(tokens).prefix(prefixLength(m)) {
            guard let list = postings[key] else { continue }
            for c in list where stamps[Int(c)] != query {
                stamps[Int(c)] = query
                let n = entries[Int(c)].count
                if RougeL.fmeasure(lcs: min(m, n), target: m, prediction: n) > threshold { candidates.append(c) }
            }
        }
        candidates.sort()
        let mine = tokens.sorted()
        for c in candidates {
            let other = entries[Int(c)]
            let n = other.count
            // The multiset overlap bounds the LCS.
            if RougeL.fmeasure(lcs: Self.overlap(mine, sortedEntries[Int(c)]), target: m, prediction: n) <= threshold { continue }
            comparisons += 1
            let score = RougeL.fmeasure(lcs: RougeL.lcs(tokens, other), target: m, prediction: n)
            if score > threshold { return Match(entry: Int(c), score: score, exact: false) }
        }
        return nil
    }

    /// Size of the multiset intersection of two sorted arrays.
    static func overlap(_ a: [Int32], _ b: [Int32]) -> Int {
        var i = 0, j = 0, n = 0
        while i < a.count && j < b.count {
            if a[i] == b[j] {
                n += 1
                i += 1
                j += 1
            } else if a[i] < b[j] {
                i += 1
            } else {
                j += 1
            }
        }
        return n
    }

    /// Adds a list; returns its entry index.
    @discardableResult
    public func add(_ tokens: [Int32]) -> Int {
        let index = entries.count
        entries.append(tokens)
        sortedEntries.append(tokens.sorted())
        stamps.append(0)
        if exact[tokens] == nil { exact[tokens] = index }
        for (_, key) in elements(tokens).prefix(prefixLength(tokens.count)) { postings[key, default: []].append(Int32(index)) }
        return index
    }

    /// Most frequent English words, most frequent first (their position, below 1024, sets the order).
    static let commonWords: [String: Int] = {
        let words = """
            the of and to a in is you that it he was for on are as with his they i at be this have from or one had by word but not \
            what all were we when your can said there use an each which she do how their if will up other about out many then them \
            these so some her would make like him into time has look two more write go see number no way could people my than first \
            water been call who oil its now find long down day did get come made may part s t give list explain describe following \
            sentence text write create provide generate given using example words what which how why new three five two best following
            """
        var map: [String: Int] = [:]
        for (i, w) in words.split(separator: " ").enumerated() where map[String(w)] == nil { map[String(w)] = i }
        return map
    }()
}
