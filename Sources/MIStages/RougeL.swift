/// ROUGE-L as Google's rouge-score computes it with use_stemmer=False: text lower-cased, every
/// run of characters other than a-z and 0-9 turned into a separator, then the F-measure of the
/// longest common subsequence of the two token lists.
public enum RougeL {
    /// Tokens as interned ids (the caller's dictionary), so comparisons are integer compares.
    public static func tokenize(_ text: String) -> [Substring] {
        let lower = text.lowercased()
        var tokens: [Substring] = []
        var start: String.Index?
        var i = lower.startIndex
        while i < lower.endIndex {
            let c = lower.utf8[i]
            let alnum = (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            if alnum {
                if start == nil { start = i }
            } else if let s = start {
                tokens.append(lower[s..<i])
                start = nil
            }
            i = lower.utf8.index(after: i)
        }
        if let s = start { tokens.append(lower[s...]) }
        return tokens
    }

    /// Length of the longest common subsequence of two id sequences.
    public static func lcs(_ a: [Int32], _ b: [Int32]) -> Int {
        if a.isEmpty || b.isEmpty { return 0 }
        var previous = [Int32](repeating: 0, count: b.count + 1)
        var current = previous
        for x in a {
            for j in 0..<b.count {
                current[j + 1] = x == b[j] ? previous[j] + 1 : max(previous[j + 1], current[j])
            }
            swap(&previous, &current)
        }
        return Int(previous[b.count])
    }

    /// rouge-score's F-measure for (target, prediction), with its exact floating-point steps.
    public static func fmeasure(lcs: Int, target: Int, prediction: Int) -> Double {
        if target == 0 || prediction == 0 { return 0 }
        let precision = Double(lcs) / Double(prediction)
        let recall = Double(lcs) / Double(target)
        return precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }
}
