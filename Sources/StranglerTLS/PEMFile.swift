import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes PEM text to a file that readers only ever see whole.
enum PEMFile {
    /// Writes `text` to a new file beside `url` with `mode`, then renames it over `url`.
    ///
    /// The key file is created with its final mode, so the key is never readable by others,
    /// even for a moment; and the rename means a listener that reloads its certificate when the
    /// file changes never reads a half-written key.
    static func write(_ text: String, to url: URL, mode: mode_t) throws {
        let path = url.path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw PEMFileError(path: path, doing: "creating", errno: errno) }
        var written = false
        defer { if !written { unlink(temporary) } }
        do {
            defer { close(descriptor) }
            // The umask may have narrowed the mode; a certificate file must stay readable.
            guard fchmod(descriptor, mode) == 0 else { throw PEMFileError(path: path, doing: "setting the mode of", errno: errno) }
            try FileHandle(fileDescriptor: descriptor, closeOnDealloc: false).write(contentsOf: Data(text.utf8))
        }
        guard rename(temporary, path) == 0 else { throw PEMFileError(path: path, doing: "replacing", errno: errno) }
        written = true
    }
}

/// A PEM file could not be written.
public struct PEMFileError: Error, CustomStringConvertible {
    /// The file being written.
    public var path: String
    /// The system's description of the failure.
    public var reason: String
    /// What failed, as a sentence.
    public var description: String

    init(path: String, doing: String, errno code: Int32) {
        self.path = path
        reason = String(cString: strerror(code))
        description = "\(doing) \(path) failed: \(reason)"
    }
}
