/// A step or the run could not go on; `exitStatus` is what mi-run exits with (a failed tool's own
/// status when a tool failed).
public struct RunError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public var exitStatus: Int32
    public init(_ message: String, exitStatus: Int32 = 70) {
        description = message
        self.exitStatus = exitStatus
    }
}
