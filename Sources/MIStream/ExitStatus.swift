/// Process exit codes, from sysexits(3), shared by every command.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    case usage = 64
    case dataError = 65
    case noInput = 66
    case software = 70
    case cantCreate = 73
    case ioError = 74
    case interrupted = 75
    case config = 78
}

/// Every error a stage can raise carries the exit status it maps to and a one-line message.
public protocol StageError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
}
