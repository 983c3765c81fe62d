import StranglerCore

/// Decides, from what the poll and SIGHUP see of a listener's certificate and key files, when
/// to read them again, and whether a load's outcome is news. Pure: no files, no clock.
///
/// A change is acted on once the files have looked the same on two polls in a row. A rotation
/// writes two files, and a tool may write one a poll before the other: loading in between would
/// pair the new certificate with the old key, fail, and log an error for a rotation that is
/// fine a moment later. Files whose load failed are not read again until they change, so a bad
/// file is reported once rather than at every poll; SIGHUP always reads them.
struct ListenerTLSWatch: Sendable {
    /// What to do after a look at the files.
    enum Decision: Equatable, Sendable {
        /// Nothing changed, or the change has not settled yet.
        case keep
        /// Read the files and make a new context from them.
        case reload
    }

    /// The files as they were when the live certificate was read from them.
    private(set) var live: FileStamp
    /// A change seen on the last poll, acted on if the next poll sees the same.
    private var settling: FileStamp?
    /// Files that failed to load: not read again by the poll until they change.
    private var failed: FileStamp?

    /// - Parameter live: the files as they were when the starting certificate was read.
    init(live: FileStamp) {
        self.live = live
    }

    /// The poll saw the files as `stamp`.
    mutating func polled(_ stamp: FileStamp) -> Decision {
        if stamp == live || stamp == failed {
            // Unchanged, changed back, or still the files that failed.
            settling = nil
            return .keep
        }
        if stamp == settling {
            settling = nil
            return .reload
        }
        settling = stamp
        return .keep
    }

    /// SIGHUP, or a caller that knows the files changed: read them whatever the poll saw.
    mutating func forced() -> Decision {
        settling = nil
        return .reload
    }

    /// The files, as they were just before the load, gave a new certificate.
    mutating func loaded(_ stamp: FileStamp) {
        live = stamp
        failed = nil
    }

    /// The files, as they were just before the load, failed to give a certificate: the live one
    /// stays.
    mutating func loadFailed(_ stamp: FileStamp) {
        failed = stamp
    }
}
