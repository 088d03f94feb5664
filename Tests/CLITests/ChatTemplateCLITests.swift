import Foundation
import Testing

/// One rule for a model without a chat template, in every stage that formats a conversation: the
/// same one-line refusal naming --chat-template, exit 65; with --chat-template it runs. On the
/// Llama 2 style fixture (SentencePiece tokenizer), so the stages also run on that tokenizer.
@Suite struct ChatTemplateCLITests {
    static let llama2 = SFTCLITests.fixtures.appendingPathComponent("tiny-hf/llama2").path

    /// The fixture without its template (transformers keeps it in chat_template.jinja).
    func untemplated(_ dir: TempDir) throws -> String {
        let model = dir.path("model")
        try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: true)
        for f in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(atPath: Self.llama2 + "/" + f, toPath: model + "/" + f)
        }
        return model
    }

    @Test func everyStageRefusesTheSameWayAndRunsWithTheFlag() throws {
        let dir = TempDir()
        let model = try untemplated(dir)
        let records = dir.write("records.jsonl", #"{"id":"a","prompt_id":"p","instruction":"Name a colour.","response":"Blue."}"# + "\n")
        let pairs = dir.write("pairs.jsonl", #"{"id":"q","prompt":"Name a colour.","chosen":"Blue.","rejected":"No."}"# + "\n")
        let prompts = dir.write("prompts.jsonl", #"{"prompt":"Name a colour."}"# + "\n")
        let seeds = dir.write("seeds.jsonl", (1...8).map { #"{"instruction":"Task \#($0).","output":"Done."}"# }.joined(separator: "\n") + "\n")
        let calls: [(String, [String])] = [
            (
                "mi-generate",
                ["--teacher", model, "--seeds", seeds, "--prompts", "1", "--samples", "1", "--max-tokens", "4", "-o", dir.path("g.jsonl")]
            ),
            ("mi-respond", ["--teacher", model, "--max-tokens", "4", "-o", dir.path("r.jsonl"), records]),
            ("mi-sft", ["--model", model, "--data", records, "--out", dir.path("sft"), "--max-steps", "1"]),
            ("mi-dpo", ["--model", model, "--pairs", pairs, "--out", dir.path("dpo"), "--max-steps", "1"]),
            ("mi-probe", ["--student", model, "--reference", records, "-o", dir.path("p.jsonl"), records]),
            ("mi-eval", ["--model", model, "--data", records]),
            ("mi-model", ["generate", "--model", model, "--chat", "--max-tokens", "4", prompts]),
        ]
        let expected = "\(model): the model has no chat template; name one with --chat-template (chatml, llama2, llama3, zephyr) or a template file"
        for (tool, args) in calls {
            let refused = try run(tool, args)
            #expect(refused.status == 65, "\(tool): \(refused.stderr)")
            let lines = refused.stderr.split(separator: "\n").filter { $0.contains("chat template") }
            #expect(lines.count == 1 && lines[0].hasSuffix(expected), "\(tool): \(refused.stderr)")
            let accepted = try run(tool, args + ["--chat-template", "llama2"])
            #expect(accepted.status == 0, "\(tool): \(accepted.stderr)")
        }
        // The checkpoints written with the flag carry the template: the next stage needs no flag.
        let eval = try run("mi-eval", ["--model", dir.path("sft"), "--data", records])
        #expect(eval.status == 0, "\(eval.stderr)")
        // A template file is recognised; a name that is neither a format nor a file is refused.
        let file = dir.write("t.jinja", try String(contentsOfFile: Self.llama2 + "/chat_template.jinja", encoding: .utf8))
        #expect(try run("mi-eval", ["--model", model, "--data", records, "--chat-template", file]).status == 0)
        let unknown = try run("mi-eval", ["--model", model, "--data", records, "--chat-template", "vicuna"])
        #expect(unknown.status == 65 && unknown.stderr.contains("--chat-template vicuna: neither a built-in format"), "\(unknown.stderr)")
        // A file that exists says what is wrong with it: empty, or not readable (a directory here).
        let empty = try run("mi-eval", ["--model", model, "--data", records, "--chat-template", dir.write("empty.jinja", "\n")])
        #expect(empty.status == 65 && empty.stderr.contains("empty.jinja: the template file is empty"), "\(empty.stderr)")
        let folder = try run("mi-eval", ["--model", model, "--data", records, "--chat-template", dir.url.path])
        #expect(folder.status == 65 && folder.stderr.contains("cannot open: not a regular file"), "\(folder.stderr)")
    }

    /// The Llama 2 chat format end to end: the tool's log-probs of a completion equal
    /// transformers' (the fixture's reference, from the whole conversation tokenized at once).
    @Test func logprobsOfTheLlama2FormatMatchTransformers() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.llama2 + "/expected.json")))
        let cases = (expected as! [String: Any])["logprobs"] as! [[String: Any]]
        let dir = TempDir()
        let input =
            try cases.map { c -> String in
                let completion = (c["completion"] as! String)
                let answer = String(completion.dropFirst().dropLast(" </s>".count))
                return String(decoding: try JSONSerialization.data(withJSONObject: ["prompt": c["user"]!, "completion": answer]), as: UTF8.self)
            }.joined(separator: "\n") + "\n"
        let r = try run("mi-model", ["logprobs", "--model", Self.llama2, "--chat", dir.write("in.jsonl", input)])
        #expect(r.status == 0, "\(r.stderr)")
        let rows = r.stdoutText.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(rows.count == cases.count)
        for (row, c) in zip(rows, cases) {
            #expect(row["ids"] as! [Int] == c["completion_ids"] as! [Int])
            for (a, b) in zip(row["logprobs"] as! [Double], c["logprobs"] as! [Double]) { #expect(abs(a - b) < 1e-4) }
        }
    }
}
