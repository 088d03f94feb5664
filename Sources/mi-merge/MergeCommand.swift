import ArgumentParser
import MICLI
import MIStages
import MIStream

struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mi-merge",
        abstract: "Put the outputs of a sharded stage (--shard K/N) back into the unsharded run's order, and check them.",
        discussion: """
            SHARD arguments are the N shard outputs in order K = 0..N-1; --input is what every shard \
            read. Each input record (by its "id") must come back exactly once, from the shard its id \
            hashes to, with every input field unchanged; a missing, duplicated or foreign id, and \
            shards whose added settings differ (an object field the stage added, such as "responder", \
            "response_sampling" or "probe"), are refused with one line and exit 65. The merged file \
            equals the unsharded run's.
            """)

    @Option(help: "The stage's input, as every shard read it (repeat for several files).") var input: [String]
    @Argument(help: "Shard outputs, shard 0 first.") var shards: [String]
    @Option(name: .shortAndLong, help: "Output ('-' is stdout; a .gz name is compressed).") var out = "-"
    @OptionGroup var common: CommonOptions

    func validate() throws {
        if shards.isEmpty { throw ValidationError("give the shard outputs, shard 0 first") }
        if input.contains("-") && shards.contains("-") { throw ValidationError("--input and a shard cannot both be stdin") }
    }

    func run() throws {
        common.apply(program: "mi-merge")
        try StageRunner.run {
            let writer = try JSONLWriter(path: out)
            do {
                let merged = try ShardMerge.merge(input: input, shards: shards, into: writer)
                try writer.commit()
                Log.info("\(merged) records from \(shards.count) shards")
            } catch {
                writer.discard()
                throw error
            }
        }
    }
}
