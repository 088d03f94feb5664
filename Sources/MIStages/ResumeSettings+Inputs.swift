import MICore
import MIStream

#if canImport(Glibc)
    import Glibc
#endif

extension ResumeSettings {
    /// The inputs by content: the SHA-256 of each file. A stream (stdin, a pipe) cannot be hashed:
    /// then the key is not compared (`ResumeSettings.unchecked`); the stages still check that the
    /// partial output's records match the input's.
    public mutating func add(inputs key: String, _ paths: [String]) {
        var digests: [String] = []
        for p in paths {
            var st = stat()
            guard p != "-", stat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, let d = try? SHA256.file(p) else {
                add(key, ResumeSettings.unchecked)
                return
            }
            digests.append(d)
        }
        add(key, digests.joined(separator: ","))
    }

    /// A model by name, the SHA-256 of its weights and the precision of its products.
    public mutating func add(model key: String, _ model: LoadedModel) {
        add(key, model.name)
        add(key + "_sha256", model.sha256)
        add(key + "_compute", model.model.compute.rawValue)
    }
}
