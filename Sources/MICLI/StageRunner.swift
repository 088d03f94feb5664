import ArgumentParser
import CSupport
import MIStream

/// Runs a command body and maps every error to one stderr line and its sysexits code, in one place.
public enum StageRunner {
    /// - Parameter resumable: the tool has `--resume`; an interrupted run's last line then says
    ///   the command that continues it.
    public static func run(resumable: Bool = false, _ body: () throws -> Void) throws {
        Interrupts.install()
        do {
            try body()
        } catch let error as StreamError where error == .brokenPipe {
            // The reader of our output went away (`| head`): stop quietly.
            throw ExitCode.success
        } catch let error as StreamError {
            if case let .interrupted(sig) = error {
                Log.error(error.description + (resumable ? "; continue with: " + resumeCommand() : ""))
                // Re-raise SIGINT so a calling shell loop stops too; SIGTERM exits 75.
                if sig == 2 { mi_reraise(sig) }
            } else {
                Log.error(error.description)
            }
            throw ExitCode(error.exitStatus.rawValue)
        } catch let error as StageError {
            Log.error(error.description)
            throw ExitCode(error.exitStatus.rawValue)
        } catch let error as ExitCode {
            throw error
        } catch let error as ValidationError {
            throw error
        } catch {
            Log.error("internal error: \(error)")
            throw ExitCode(ExitStatus.software.rawValue)
        }
    }

    /// This process's command line with `--resume` added, quoted for a POSIX shell.
    static func resumeCommand() -> String {
        var args = CommandLine.arguments
        args[0] = String(args[0].split(separator: "/").last ?? Substring(args[0]))
        if !args.contains("--resume") { args.append("--resume") }
        let plain = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        return args.map { a in
            if !a.isEmpty && a.allSatisfy({ plain.contains($0) }) { return a }
            return "'" + a.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
        }.joined(separator: " ")
    }
}
