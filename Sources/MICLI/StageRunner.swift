import ArgumentParser
import CSupport
import MIStream

/// Runs a command body and maps every error to one stderr line and its sysexits code, in one place.
public enum StageRunner {
    public static func run(_ body: () throws -> Void) throws {
        Interrupts.install()
        do {
            try body()
        } catch let error as StreamError where error == .brokenPipe {
            // The reader of our output went away (`| head`): stop quietly.
            throw ExitCode.success
        } catch let error as StreamError {
            if case let .interrupted(sig) = error {
                Log.error(error.description)
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
}
