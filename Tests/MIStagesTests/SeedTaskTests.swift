import MIStages
import MIStream
import Testing

/// Seed tasks shown to the teacher keep their input (30 of the 74 bundled seeds have one).
@Suite struct SeedTaskTests {
    func object(_ json: String) throws -> JSONObject {
        guard case let .object(o) = try JSONParser().parse(json) else { fatalError("not an object") }
        return o
    }

    @Test func alpacaInputFollowsTheInstruction() throws {
        let o = try object(#"{"instruction":"Summarise the text.","input":"  The cat sat on the mat. ","output":"A cat sat."}"#)
        #expect(try Generate.seedTask(o) == "Summarise the text.\n   Input: The cat sat on the mat.")
        #expect(try Generate.seedTask(try object(#"{"instruction":"Name a fruit.","input":""}"#)) == "Name a fruit.")
    }

    @Test func selfInstructInstancesGiveTheInput() throws {
        let o = try object(#"{"instruction":"Sort the numbers.","instances":[{"input":"3, 1, 2","output":"1, 2, 3"}]}"#)
        #expect(try Generate.seedTask(o) == "Sort the numbers.\n   Input: 3, 1, 2")
        #expect(try Generate.seedTask(try object(#"{"instruction":"Tell a joke.","instances":[{"input":"","output":"..."}]}"#)) == "Tell a joke.")
    }

    @Test func theGenerationPromptShowsTheInput() throws {
        let task = try Generate.seedTask(try object(#"{"instruction":"Translate to French.","input":"Good morning"}"#))
        #expect(InstructionPrompt.build(examples: [task]).contains("1. Translate to French.\n   Input: Good morning\n"))
    }
}
