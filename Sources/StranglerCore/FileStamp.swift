#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What identifies one state of files cheaply, without reading them: for each, whether it
/// exists, its inode, size and modification time. The route table watcher, the routes file
/// publisher and the TLS certificate reloads poll with it.
///
/// `stat` follows symbolic links on purpose: Kubernetes mounts a secret as links through a
/// `..data` link that it swaps on update, so the link itself never changes while the file it
/// reaches does. Comparing the inode as well as the time catches a file replaced by rename
/// within the time's resolution (certbot and most deploy tools write a new file and rename it).
public struct FileStamp: Equatable, Sendable {
    /// One file's state; all zero when it is missing.
    public struct File: Equatable, Sendable {
        /// Whether the path names a file (through any links).
        public var exists: Bool
        /// The device and inode: a file replaced by rename has a new one.
        public var device: UInt64
        /// See `device`.
        public var inode: UInt64
        /// Its size in bytes.
        public var size: Int64
        /// Its modification time, seconds and nanoseconds.
        public var modifiedSeconds: Int
        /// See `modifiedSeconds`.
        public var modifiedNanoseconds: Int

        /// A file's state as `stat` gives it.
        public init(exists: Bool, device: UInt64, inode: UInt64, size: Int64, modifiedSeconds: Int, modifiedNanoseconds: Int) {
            self.exists = exists
            self.device = device
            self.inode = inode
            self.size = size
            self.modifiedSeconds = modifiedSeconds
            self.modifiedNanoseconds = modifiedNanoseconds
        }

        /// A file that does not exist.
        public static let missing = File(exists: false, device: 0, inode: 0, size: 0, modifiedSeconds: 0, modifiedNanoseconds: 0)
    }

    /// One entry per path, in order.
    public var files: [File]

    /// A stamp of files already looked at.
    public init(files: [File]) {
        self.files = files
    }

    /// The current state of the files at `paths`.
    public init(paths: [String]) {
        files = paths.map(Self.stamp)
    }

    /// The current state of the file at `path`.
    public init(path: String) {
        self.init(paths: [path])
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
