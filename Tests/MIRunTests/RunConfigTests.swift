import MIRun
import Testing

/// Config keys that reach every tool.
@Suite struct RunConfigTests {
    func config(_ yaml: String) throws(ConfigError) -> RunConfig {
        let minimal = "teacher: t.gguf\nseeds: s.jsonl\nreference: r.jsonl\n"
        return try RunConfig(try ConfigNode.parse(yaml: minimal + yaml, file: "c.yaml"), base: "/configs")
    }

    @Test func chatTemplateIsAFormatNameOrAFileBesideTheConfig() throws {
        #expect(try config("").chatTemplate == nil)
        #expect(try config("chat_template: zephyr\n").chatTemplate == "zephyr")
        #expect(try config("chat_template: templates/mine.jinja\n").chatTemplate == "/configs/templates/mine.jinja")
        #expect(throws: ConfigError.self) { try config("chat_template: [a, b]\n") }
        // Per tool it is mi-run's to set, so the stages cannot disagree.
        #expect {
            try config("training:\n  sft: {chat_template: chatml}\n")
        } throws: { "\($0)".contains("training.sft.chat_template is set by mi-run itself") }
    }
}
