import MIStages
import Testing

@Suite struct InstructionPromptTests {
    @Test func promptListsTheExamplesAndAsksForTags() {
        let p = InstructionPrompt.build(examples: ["Do A.", "Do B."])
        #expect(p.contains("1. Do A.\n2. Do B.\n"))
        #expect(p.contains("<instruction>") && p.contains("</instruction>"))
    }

    @Test func extractionTakesTheLastCompleteBlock() {
        #expect(InstructionPrompt.extract("x <instruction>first</instruction> y <instruction>second</instruction> z") == "second")
        #expect(InstructionPrompt.extract("no tags") == nil)
        #expect(InstructionPrompt.extract("<instruction>open only") == nil)
        #expect(InstructionPrompt.extract("<instruction>open only", closedByEnd: true) == "open only")
        #expect(InstructionPrompt.extract("</instruction> then <instruction>tail", closedByEnd: true) == "tail")
    }

    @Test func filtersFollowTheReferenceRules() throws {
        #expect(try InstructionPrompt.clean("  write   a\n poem about\tthe sea ").get() == "Write a poem about the sea")
        #expect(throws: InstructionPrompt.Rejection.tooShort) { try InstructionPrompt.clean("Hi.").get() }
        #expect(throws: InstructionPrompt.Rejection.tooLong) { try InstructionPrompt.clean(String(repeating: "word ", count: 100)).get() }
        #expect(throws: InstructionPrompt.Rejection.unsuitableWord) { try InstructionPrompt.clean("Draw a picture of a cat.").get() }
        #expect(throws: InstructionPrompt.Rejection.unsuitableWord) {
            try InstructionPrompt.clean("Please go to the website and summarise it.").get()
        }
        #expect(throws: InstructionPrompt.Rejection.leadingPunctuation) { try InstructionPrompt.clean("- List three fruits.").get() }
        #expect(throws: InstructionPrompt.Rejection.nonASCIIStart) { try InstructionPrompt.clean("Éxplain gravity simply.").get() }
        // whole words only: "mapping" and "profile" are fine
        #expect(try InstructionPrompt.clean("Explain the mapping of a user profile.").get() == "Explain the mapping of a user profile.")
    }
}
