import ArgumentParser
import MICLI
import MICore
import MIStages
import MIStream

/// mi-eval --pairs: how a model ranks preference pairs against a reference model, as mi-dpo
/// reports its held-out pairs, so that two teachers can be ranked on the same pairs.
struct PairRanking {
    let command: EvalCommand

    func run(pairs paths: [String], reference: String) throws {
        let c = command
        let maxLength = c.maxLength ?? 2048
        let policy = c.badRecords.policy()
        let referenceModel = try LoadedModel(path: reference, blockWeights: false, chatTemplate: c.chatTemplate.value)
        let reader = RecordReader(paths: paths, options: c.badRecords.readOptions, badRecords: policy)
        var data = try DPORun.readPairs(reader, model: referenceModel, maxLength: maxLength)
        if let f = c.heldoutFraction {
            data.holdOut(fraction: f)
            data.items = data.heldout
        }
        if data.items.isEmpty { throw ValidationError("no pairs to rank in \(paths.joined(separator: ", "))") }
        if data.truncated > 0 { Log.warning("\(data.truncated) pairs cut to --max-length \(maxLength) tokens") }
        DPORun.score(referenceModel.model, &data.items)
        // Same tokens (the reference's tokenizer, as in mi-dpo) under the evaluated model.
        let evaluated = try LoadedModel(path: c.model, blockWeights: false, chatTemplate: c.chatTemplate.value)
        let (metrics, shifts) = DPORun.rank(data.items, by: evaluated.model, beta: c.beta ?? 0.1)
        let writer = try JSONLWriter(path: c.out)
        for (pair, shift) in zip(data.items, shifts) {
            var o = JSONObject()
            if let id = pair.id { o["id"] = .string(id) }
            o["prompt_id"] = .string(pair.group)
            o["chosen_logp_shift"] = JSONNumber.value(shift.chosen)
            o["rejected_logp_shift"] = JSONNumber.value(shift.rejected)
            o["correct"] = .bool(shift.chosen > shift.rejected)
            try writer.write(o)
        }
        try writer.commit()
        try policy.commit()
        var summary = metrics
        summary["stage"] = .string("pairs")
        Log.info(JSONWriter.string(.object(summary)))
    }
}
