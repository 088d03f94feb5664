/// One training sequence: prompt tokens (context only) followed by completion tokens (scored).
public struct TrainingExample: Sendable, Equatable {
    public var prompt: [Int32]
    public var completion: [Int32]
    public init(prompt: [Int32], completion: [Int32]) {
        self.prompt = prompt
        self.completion = completion
    }
    public var tokens: [Int32] { prompt + completion }
}

/// Loss of a batch: the mean negative log-likelihood over all completion tokens of the batch
/// (Hugging Face's convention), with each example's own mean and sum beside it.
public struct BatchLoss: Sendable {
    public var mean: Double
    public var perExampleMean: [Double]
    public var perExampleSum: [Double]
    public var tokens: Int
}
