import Foundation
import MIStream
import Testing

/// The external sort equals a stable in-memory sort for any memory budget, and cleans up.
@Suite struct RecordSorterTests {
    @Test(arguments: [1, 300, 5_000, 1 << 30])
    func equalsAStableSortWhateverTheBudget(budget: Int) throws {
        var rng = SystemRandomNumberGenerator()
        let keys = ["b", "a", "c", "ab", "é", "", "ba"]
        var input: [JSONObject] = []
        for i in 0..<400 {
            let k = keys[Int(rng.next() % UInt64(keys.count))]
            input.append(JSONObject(uniqueKeysAndValues: [("k", .string(k)), ("i", .number(JSONNumber(i))), ("x", .number(JSONNumber(1.5)!))]))
        }
        let dir = TempDir()
        let sorter = RecordSorter(memoryBudget: budget, temporaryDirectory: dir.path("")) { Array(try $0.string("k").utf8) }
        for o in input { try sorter.add(o) }
        var output: [JSONObject] = []
        try sorter.forEachSorted { output.append($0) }
        let expected = input.enumerated().sorted { a, b in
            let ka = Array(try! a.element.string("k").utf8), kb = Array(try! b.element.string("k").utf8)
            return ka == kb ? a.offset < b.offset : ka.lexicographicallyPrecedes(kb)
        }.map(\.element)
        #expect(output == expected)
        #expect(budget < 1000 ? sorter.spilledRuns > 1 : budget > 1 << 20 ? sorter.spilledRuns == 0 : true)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path("")).isEmpty)
    }
}
