#if canImport(Glibc)
    import Glibc
#endif

/// Where an output path's bytes go and how they are made final: one decision for every tool and
/// for mi-run's own files.
///
/// - `-`, `/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`: that descriptor, written
///   straight (as `-o -` does for stdout).
/// - A symbolic link: the rules below, applied to the file it points to; the link stays a link.
/// - An existing character or block device, FIFO or socket: opened and written straight. Nothing
///   is staged or renamed, so `/dev/null` stays a device and a FIFO's reader gets every byte.
/// - A regular file or a new name: written as `NAME.partial`, which is locked for the whole run
///   (a second writer of the same output stops with exit 75 instead of interleaving records), and
///   renamed over NAME by `commit()` after fsync, so a reader never sees half an output.
public final class OutputFile {
    /// The path as given, for messages.
    public let name: String
    public let descriptor: Int32
    /// The file `commit()` renames the partial to (a link's target), nil when written straight.
    public let finalPath: String?
    public let partialPath: String?
    private let owned: Bool
    private var committed = false

    /// Whether the output is staged (partial, then rename): only those can be resumed.
    public var isStaged: Bool { partialPath != nil }

    /// - Parameter append: continue an existing `NAME.partial` instead of truncating it.
    public init(path: String, append: Bool = false) throws(StreamError) {
        name = path
        if let fd = Self.standardDescriptor(path) {
            descriptor = fd
            owned = false
            finalPath = nil
            partialPath = nil
            return
        }
        let target = try Self.resolveLinks(path)
        var st = stat()
        if stat(target, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG {
            let kind = st.st_mode & S_IFMT
            if kind == S_IFDIR { throw .cannotCreate(path: path, reason: "is a directory") }
            descriptor = try kind == S_IFSOCK ? Self.connect(target, name: path) : Self.openStraight(target, name: path)
            owned = true
            finalPath = nil
            partialPath = nil
            return
        }
        let partial = target + ".partial"
        let fd = open(partial, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : 0), 0o644)
        if fd < 0 { throw .cannotCreate(path: partial, reason: String(cString: strerror(errno))) }
        // Locked before anything is truncated: a second writer must not damage the first's file.
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = Self.lockHolder(fd)
            close(fd)
            throw .inUse(path: partial, holder: holder)
        }
        if !append, ftruncate(fd, 0) != 0 {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .cannotCreate(path: partial, reason: reason)
        }
        descriptor = fd
        owned = true
        finalPath = target
        partialPath = partial
    }

    deinit { if owned { close(descriptor) } }

    /// Makes a staged output final: fsync, rename over the final name, fsync the directory.
    /// Written-straight outputs are final already.
    public func commit() throws(StreamError) {
        guard !committed else { return }
        committed = true
        guard let partial = partialPath, let final = finalPath else { return }
        if fsync(descriptor) != 0, errno != EINVAL, errno != EROFS {
            throw .writeFailed(path: partial, reason: "fsync: " + String(cString: strerror(errno)))
        }
        if rename(partial, final) != 0 {
            throw .cannotCreate(path: final, reason: "rename: " + String(cString: strerror(errno)))
        }
        unlink(partial + ".settings") // the resume settings of an unfinished output (ResumeSettings)
        Self.syncDirectory(of: final)
    }

    /// Cuts a staged output (opened to append) back to its first `length` bytes.
    func truncate(to length: Int) throws(StreamError) {
        guard let partial = partialPath else { return }
        if ftruncate(descriptor, off_t(length)) != 0 {
            throw .writeFailed(path: partial, reason: "ftruncate: " + String(cString: strerror(errno)))
        }
    }

    /// Removes an uncommitted partial (the input itself was bad).
    public func discard() {
        if let partial = partialPath, !committed {
            unlink(partial)
            unlink(partial + ".settings")
        }
    }

    /// The partial file an interrupted run of `path` left, when the output is one that is staged.
    public static func partialPath(for path: String) -> String? {
        guard standardDescriptor(path) == nil, let target = try? resolveLinks(path) else { return nil }
        var st = stat()
        if stat(target, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG { return nil }
        return target + ".partial"
    }

    /// `-` and the names of an open descriptor.
    static func standardDescriptor(_ path: String) -> Int32? {
        switch path {
        case "-", "/dev/stdout": return 1
        case "/dev/stderr": return 2
        default: break
        }
        for prefix in ["/dev/fd/", "/proc/self/fd/"] where path.hasPrefix(prefix) {
            if let n = Int32(path.dropFirst(prefix.count)), n >= 0 { return n }
        }
        return nil
    }

    /// Follows symbolic links (also dangling ones: the output is created where the link points).
    static func resolveLinks(_ path: String) throws(StreamError) -> String {
        var p = path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFLNK else { return p }
            guard let target = linkTarget(p) else { throw .cannotCreate(path: path, reason: "readlink: " + String(cString: strerror(errno))) }
            p = target.hasPrefix("/") ? target : directory(of: p) + "/" + target
        }
        throw .cannotCreate(path: path, reason: "too many levels of symbolic links")
    }

    static func openStraight(_ path: String, name: String) throws(StreamError) -> Int32 {
        // A FIFO blocks here until a reader opens it, as `cat > fifo` does.
        while true {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            if fd >= 0 { return fd }
            guard errno == EINTR else { throw .cannotCreate(path: name, reason: String(cString: strerror(errno))) }
            try Interrupts.check() // Ctrl-C while waiting for a reader
        }
    }

    static func connect(_ path: String, name: String) throws(StreamError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .cannotCreate(path: name, reason: String(cString: strerror(errno))) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw .cannotCreate(path: name, reason: "socket path too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard ok == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .cannotCreate(path: name, reason: reason)
        }
        return fd
    }

    /// The process holding a flock on the file behind `fd`, from /proc/locks (nil when unknown).
    static func lockHolder(_ fd: Int32) -> Int32? {
        var st = stat()
        guard fstat(fd, &st) == 0, let bytes = readAll("/proc/locks") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let dev = UInt64(st.st_dev)
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff))
        let minor = (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff))
        let key = String(major, radix: 16).leftPadded(2) + ":" + String(minor, radix: 16).leftPadded(2) + ":" + String(st.st_ino)
        // "1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF"
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5] == key else { continue }
            return Int32(fields[4])
        }
        return nil
    }

    /// What the symbolic link at `path` points to (nil when it is none or cannot be read).
    static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink(path, &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The whole content of a (small) file, nil when it cannot be read.
    static func readAll(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = Glibc.read(fd, &chunk, chunk.count)
            if n < 0 { return nil }
            if n == 0 { return bytes }
            bytes += chunk[..<n]
        }
    }

    /// Writes `bytes` as the whole output `path`, committed as any output is.
    public static func write(_ bytes: [UInt8], to path: String) throws(StreamError) {
        let file = try OutputFile(path: path)
        try FileDescriptorSink(fd: file.descriptor, name: file.partialPath ?? path).write(bytes, count: bytes.count)
        try file.commit()
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func syncDirectory(of path: String) {
        let fd = open(directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
