import MICore
import MIStream

/// What SFT, the probe and evaluation do with a response that `mi-respond --max-tokens` cut
/// (`"truncated": true`): it never ended, so it must not be taught or scored as if it did.
public enum TruncatedResponses: String, Sendable, CaseIterable {
    /// Kept, without the end-of-turn marker: the student learns (or is scored on) the text only.
    case open
    /// Left out, and counted.
    case drop
}

/// The training example of an instruction/response record, the one definition every stage uses:
/// the user message is the instruction (an Alpaca `input` appended after a blank line), the
/// completion the response followed by the end-of-turn marker, unless the response was truncated.
public enum InstructionExample {
    public static func userMessage(instruction: String, input: String?) -> String {
        guard let input, !input.isEmpty else { return instruction }
        return instruction + "\n\n" + input
    }

    /// nil when the record is truncated and `truncated` is `.drop`.
    public static func make(
        _ o: JSONObject, model: LoadedModel, chat: ChatFormat,
        truncated: TruncatedResponses
    ) throws(FieldError) -> TrainingExample? {
        let instruction = try o.string("instruction"), response = try o.string("response"), input = try o.optionalString("input")
        let cut = try o.optionalBool("truncated") ?? false
        if cut && truncated == .drop { return nil }
        let prompt = chat.promptIds(user: userMessage(instruction: instruction, input: input), tokenizer: model.tokenizer)
        let completion = chat.completionIds(response, ended: !cut, tokenizer: model.tokenizer)
        return TrainingExample(prompt: prompt, completion: completion)
    }
}

extension JSONObject {
    /// A boolean that may be absent or null.
    public func optionalBool(_ key: String) throws(FieldError) -> Bool? {
        guard let v = self[key], v != .null else { return nil }
        guard case let .bool(b) = v else { throw FieldError(field: key, problem: "expected boolean, got \(v.typeName)") }
        return b
    }
}
