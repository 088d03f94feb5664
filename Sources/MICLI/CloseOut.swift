import CSupport

/// Output written through stdio (help, `--version`) is checked when the process exits: a write
/// that fails exits 74, like every other write, never 0. Call first thing in `main`.
public enum CloseOut {
    public static func install() { mi_install_close_stdout() }
}
