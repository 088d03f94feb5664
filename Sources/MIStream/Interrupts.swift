import CSupport

/// Cooperative handling of SIGINT/SIGTERM: handlers only record the signal; record loops
/// call `check()` between records so no record is ever torn.
public enum Interrupts {
    public static func install() { mi_install_stop_handlers() }
    public static var requested: Bool { mi_stop_signal() != 0 }
    public static var signal: Int32 { mi_stop_signal() }

    public static func check() throws(StreamError) {
        let sig = mi_stop_signal()
        if sig != 0 { throw .interrupted(signal: sig) }
    }
}
