import FlowModel
import SystemKit

#if canImport(Glibc)
import Glibc
#endif

/// The decoder target's input format: datagrams one after another, each as a 1-byte control
/// (bit 0: which of two exporters sent it; bits 1-7: seconds × 60 the clock advances before it, so
/// template expiry is reached) and a 2-byte big-endian length, then that many bytes; the last datagram
/// takes what is left when the input ends early. `scripts/fuzz-seeds.py` writes the corpus in this form.
public enum FuzzInput {
    public struct Datagram {
        public var exporter: Int
        public var advanceSeconds: UInt32
        public var bytes: [UInt8]
    }

    public static let exporters = [
        ExporterAddress(address: IPAddress(v4: 0xC000_0201), port: 2055),
        ExporterAddress(address: IPAddress(v4: 0xC000_0202), port: 4739),
    ]

    public static func datagrams(_ input: UnsafeRawBufferPointer) -> [Datagram] {
        var result: [Datagram] = []
        var offset = 0
        while offset + 3 <= input.count {
            let control = input[offset]
            let length = Int(input[offset + 1]) << 8 | Int(input[offset + 2])
            offset += 3
            let end = min(input.count, offset + length)
            result.append(Datagram(exporter: Int(control & 1), advanceSeconds: UInt32(control >> 1) * 60,
                                   bytes: Array(input[offset..<end])))
            offset = end
        }
        return result
    }
}

/// Seed corpora the code writes itself (`make fuzz` asks for them through environment variables in
/// `LLVMFuzzerInitialize`): files in, files out, nothing else.
public enum FuzzFiles {
    /// The regular files directly in `directory`, sorted by name.
    public static func list(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if entry.pointee.d_type == UInt8(DT_REG) { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    public static func read(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        return DescriptorIO.readToEnd(fd)
    }

    public static func write(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { fatalError("cannot write \(path)") }
        defer { close(fd) }
        DescriptorIO.writeAll(fd, bytes)
    }

    /// The value of an environment variable, nil when unset or empty.
    public static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }
}
