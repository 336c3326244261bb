import SystemKit
import ProcessKit

#if canImport(Glibc)
import Glibc
#endif

/// The template state directory (`templates.state.dir`): each worker slot keeps its latest template
/// snapshot (the exchange's format: versioned, checksummed) in `templates-<slot>.kfts`, so templates
/// survive a restart of the service or the machine. Every worker imports every slot's file at start, so
/// the workers of a node begin with the union of what the node knew.
///
/// A file is replaced atomically (temporary file, fsync, rename, fsync of the directory): a crash leaves
/// the old file or the new one, never a mix. A file is read only if it is a regular file owned by this
/// user and writable by nobody else (anyone who can write it could make kflow decode forged templates),
/// at most `TemplateExchange.capacity` octets; its content is then checked like any snapshot.
struct TemplateStateFiles {
    let directory: String
    let slot: Int
    static let prefix = "templates-"
    static let suffix = ".kfts"
    /// Files looked at in the directory (slots of larger earlier configurations included).
    static let maxFiles = 1024

    var path: String { "\(directory)/\(Self.prefix)\(slot)\(Self.suffix)" }

    /// Creates the directory (mode 0700) when missing; an existing one is left as it is.
    func prepare() throws(SystemError) {
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw SystemError("cannot create the template state directory \(directory)", code: errno)
        }
    }

    /// Replaces this slot's file with `snapshot`.
    func write(_ snapshot: [UInt8]) throws(SystemError) {
        let temporary = "\(directory)/.\(Self.prefix)\(slot)\(Self.suffix).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw SystemError("cannot create \(temporary)", code: errno) }
        var failure: Int32 = DescriptorIO.writeAll(fd, snapshot) ? 0 : errno
        if failure == 0, fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0 else {
            unlink(temporary)
            throw SystemError("cannot write \(temporary)", code: failure)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw SystemError("cannot rename \(temporary) to \(path)", code: code)
        }
        // The rename itself reaches the disk with the directory.
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    /// One file found in the directory: its content, or why it is not trusted.
    struct Found {
        let path: String
        let content: Result<[UInt8], SystemError>
    }

    /// Every slot's file, in name order (at most `maxFiles`). A missing directory is no file.
    func readAll() -> [Found] {
        guard let stream = opendir(directory) else { return [] }
        var names: [String] = []
        while names.count < Self.maxFiles, let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasPrefix(Self.prefix), name.hasSuffix(Self.suffix) { names.append(name) }
        }
        closedir(stream)
        return names.sorted().map { name in
            let path = "\(directory)/\(name)"
            return Found(path: path, content: Self.readTrusted(path))
        }
    }

    private static func readTrusted(_ path: String) -> Result<[UInt8], SystemError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { return .failure(SystemError("cannot open it", code: errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(SystemError("cannot stat it", code: errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(SystemError("not a regular file", code: EINVAL)) }
        guard info.st_uid == geteuid() else {
            return .failure(SystemError("owned by uid \(info.st_uid), not this process's \(geteuid())", code: EPERM))
        }
        guard info.st_mode & 0o022 == 0 else {
            return .failure(SystemError("writable by group or others (mode \(String(info.st_mode & 0o777, radix: 8)))", code: EPERM))
        }
        guard info.st_size <= off_t(TemplateExchange.capacity) else {
            return .failure(SystemError("\(info.st_size) octets, more than a snapshot can hold (\(TemplateExchange.capacity))", code: EFBIG))
        }
        let bytes = DescriptorIO.readToEnd(fd)
        guard bytes.count <= TemplateExchange.capacity else {
            return .failure(SystemError("grew past \(TemplateExchange.capacity) octets while read", code: EFBIG))
        }
        return .success(bytes)
    }
}
