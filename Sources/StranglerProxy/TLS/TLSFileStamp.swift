#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies one state of certificate and key files cheaply (a listener's, an https
/// upstream's), without reading them: for each, whether it exists, its inode, size and
/// modification time.
///
/// `stat` follows symbolic links on purpose: Kubernetes mounts a secret as links through a
/// `..data` link that it swaps on update, so the link itself never changes while the file it
/// reaches does. Comparing the inode as well as the time catches a file replaced by rename
/// within the time's resolution (certbot and most deploy tools write a new file and rename it).
struct TLSFileStamp: Equatable, Sendable {
    /// One file's state; all zero when it is missing.
    struct File: Equatable, Sendable {
        var exists: Bool
        var device: UInt64
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int

        static let missing = File(exists: false, device: 0, inode: 0, size: 0, modifiedSeconds: 0, modifiedNanoseconds: 0)
    }

    var files: [File]

    init(files: [File]) {
        self.files = files
    }

    /// The current state of the files at `paths`.
    init(paths: [String]) {
        files = paths.map(Self.stamp)
    }

    private static func stamp(_ path: String) -> File {
        var info = stat()
        guard stat(path, &info) == 0 else { return .missing }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return File(
            exists: true,
            device: UInt64(info.st_dev),
            inode: UInt64(info.st_ino),
            size: Int64(info.st_size),
            modifiedSeconds: Int(modified.tv_sec),
            modifiedNanoseconds: Int(modified.tv_nsec)
        )
    }
}
