import Foundation
import StranglerProxy

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The route table file on disk: an exclusive lock for editors, and atomic replacement.
///
/// Every editor (the CLI, the admin API, auto-demote) takes the lock, reads, validates, writes a
/// temporary file beside the table, fsyncs it and renames it over the table. A reader (the
/// proxy's hot reload) sees the old file or the new one, never half of one.
struct RouteFile {
    let path: String

    /// Runs `body` while holding `<path>.lock`; waits up to `timeout` for another editor.
    func withLock<T>(timeout: Duration = .seconds(10), _ body: () async throws -> T) async throws -> T {
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw RouteOperationError(.fileFailed, "cannot open \(lockPath): \(String(cString: strerror(errno))); check the folder is writable")
        }
        defer { close(descriptor) }
        let deadline = ContinuousClock.now + timeout
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard ContinuousClock.now < deadline else {
                throw RouteOperationError(.busy, "another editor has held \(lockPath) for \(timeout); try again")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        defer { flock(descriptor, LOCK_UN) }
        return try await body()
    }

    /// The file's bytes.
    func read() throws(RouteOperationError) -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RouteOperationError(.fileFailed, "cannot read \(path); check the path and its permissions")
        }
        return data
    }

    /// Writes `data` to a temporary file beside the table and fsyncs it; `commit` renames it
    /// into place. Split so the audit row can be stored between the two.
    func stage(_ data: Data) throws(RouteOperationError) -> StagedWrite {
        let url = URL(fileURLWithPath: path)
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp").path
        var mode: mode_t = 0o644
        var info = stat()
        if stat(path, &info) == 0 { mode = info.st_mode & 0o7777 }
        let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw RouteOperationError(.fileFailed, "cannot write beside \(path): \(String(cString: strerror(errno))); check the folder is writable")
        }
        defer { close(descriptor) }
        let written = data.withUnsafeBytes { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let count = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 {
                    if errno == EINTR { continue }
                    return -1
                }
                offset += count
            }
            return offset
        }
        guard written == data.count, fsync(descriptor) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw RouteOperationError(.fileFailed, "cannot write \(temporary): \(reason) (disk full?); \(path) is unchanged")
        }
        return StagedWrite(temporary: temporary, path: path)
    }

    /// A fully written temporary file waiting to replace the table.
    struct StagedWrite {
        let temporary: String
        let path: String

        /// Renames the temporary file over the table and syncs the folder, so the rename
        /// survives a crash.
        func commit() throws(RouteOperationError) {
            guard rename(temporary, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(temporary)
                throw RouteOperationError(.fileFailed, "cannot replace \(path): \(reason); it is unchanged")
            }
            let folder = open(URL(fileURLWithPath: path).deletingLastPathComponent().path, O_RDONLY | O_CLOEXEC)
            if folder >= 0 {
                fsync(folder)
                close(folder)
            }
        }

        /// Throws the temporary file away.
        func discard() {
            unlink(temporary)
        }
    }
}
