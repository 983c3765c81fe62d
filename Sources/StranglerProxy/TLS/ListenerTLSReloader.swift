import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOSSL
import StranglerCore

/// Holds the certificate a TLS listener accepts new connections with, and replaces it when the
/// files change or on request (SIGHUP), without touching open connections.
///
/// The listener reads ``current`` once per accepted connection; the connection keeps that
/// context for its life, so a reload never drops or renegotiates a connection. A reload that
/// fails (a missing file, PEM that does not parse, a key that is not the certificate's) keeps
/// the certificate in use, logs an error naming the file and the cause, and counts
/// `strangler_tls_reloads_total{listener,result="failed"}`.
///
/// ```swift
/// let reloader = ListenerTLSReloader(tls: tls, listener: "proxy", logger: logger, metrics: metrics)
/// try reloader.load()                    // at start: throws ListenerTLSError
/// let context = reloader.current.context // per accepted connection
/// reloader.reload(reason: "SIGHUP")      // or poll() every tls.pollInterval
/// ```
public final class ListenerTLSReloader: Sendable {
    /// The files.
    public let tls: ListenerTLS
    /// The listener's name in logs and metrics: `proxy` or `admin`.
    public let listener: String
    private let logger: Logger
    private let metrics: ProxyMetrics
    private let state = NIOLockedValueBox(State())
    /// Held for a whole reload (read, then install): the poll and SIGHUP run on different tasks,
    /// and an older read installed after a newer one would put the old certificate back.
    private let reloading = NIOLock()

    private struct State {
        var certificate: ListenerCertificate?
        var watch: ListenerTLSWatch?
    }

    /// Creates a reloader; nothing is read until ``load()``.
    public init(tls: ListenerTLS, listener: String, logger: Logger, metrics: ProxyMetrics) {
        self.tls = tls
        self.listener = listener
        self.logger = logger
        self.metrics = metrics
    }

    /// Reads the files for the first time, unless that was done already.
    /// - Throws: ``ListenerTLSError`` naming the file at fault: the listener must not start.
    public func load() throws(ListenerTLSError) {
        guard state.withLockedValue({ $0.certificate == nil }) else { return }
        let stamp = FileStamp(paths: tls.watchedFiles)
        let certificate = try ListenerCertificate(loading: tls)
        state.withLockedValue { state in
            state.certificate = certificate
            state.watch = ListenerTLSWatch(live: stamp)
        }
        warnIfExpired(certificate)
    }

    /// The certificate new connections are accepted with.
    ///
    /// - Precondition: ``load()`` succeeded.
    public var current: ListenerCertificate {
        guard let certificate = state.withLockedValue({ $0.certificate }) else {
            preconditionFailure("ListenerTLSReloader.current read before load()")
        }
        return certificate
    }

    /// Looks at the files and reloads them if they changed and have settled (see
    /// ``ListenerTLSWatch``). Called every ``ListenerTLS/pollInterval``.
    public func poll() {
        let stamp = FileStamp(paths: tls.watchedFiles)
        let decision = state.withLockedValue { $0.watch?.polled(stamp) ?? .keep }
        if decision == .reload { reload(stamp, reason: "the files changed") }
    }

    /// Reads the files now, whatever the poll saw (SIGHUP).
    /// - Returns: whether a new certificate is in use.
    @discardableResult
    public func reload(reason: String) -> Bool {
        let stamp = FileStamp(paths: tls.watchedFiles)
        guard state.withLockedValue({ $0.watch?.forced() }) == .reload else { return false }
        return reload(stamp, reason: reason)
    }

    /// Polls every ``ListenerTLS/pollInterval`` until the task is cancelled.
    public func watch() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: tls.pollInterval) } catch { return }
            poll()
        }
    }

    /// Loads the files and puts the result in force, one reload at a time. The files are
    /// looked at again under the lock: what is installed is recorded as what was read.
    private func reload(_ seen: FileStamp, reason: String) -> Bool {
        reloading.withLock {
            reloadHoldingLock(FileStamp(paths: tls.watchedFiles), reason: reason)
        }
    }

    private func reloadHoldingLock(_ stamp: FileStamp, reason: String) -> Bool {
        let certificate: ListenerCertificate
        do {
            certificate = try ListenerCertificate(loading: tls)
        } catch {
            state.withLockedValue { $0.watch?.loadFailed(stamp) }
            metrics.addToCounter("strangler_tls_reloads_total", labels: [("listener", listener), ("result", "failed")], 1)
            logger.error(
                "TLS certificate reload failed; the listener keeps its certificate",
                metadata: [
                    "listener": "\(listener)", "file": "\(error.path)", "cause": "\(error.reason)", "trigger": "\(reason)",
                    "fix": "\(error.remedy)",
                ]
            )
            return false
        }
        state.withLockedValue { state in
            state.certificate = certificate
            state.watch?.loaded(stamp)
        }
        metrics.addToCounter("strangler_tls_reloads_total", labels: [("listener", listener), ("result", "ok")], 1)
        logger.info(
            "TLS certificate reloaded; new connections use it",
            metadata: [
                "listener": "\(listener)", "certificate": "\(tls.certificateFile)", "trigger": "\(reason)",
                "serial": "\(Self.hex(certificate.leaf.serialNumber))", "not_after": "\(certificate.leaf.notValidAfter)",
            ]
        )
        warnIfExpired(certificate)
        return true
    }

    /// An expired certificate is served (refusing to start would turn an overdue renewal into an
    /// outage of every client that ignores dates), but it is said loudly.
    private func warnIfExpired(_ certificate: ListenerCertificate) {
        let now = time_t(Date().timeIntervalSince1970)
        guard certificate.leaf.notValidAfter < now || certificate.leaf.notValidBefore > now else { return }
        logger.warning(
            "the TLS certificate is outside its validity period; clients that check dates will refuse it",
            metadata: [
                "listener": "\(listener)", "certificate": "\(tls.certificateFile)",
                "not_before": "\(certificate.leaf.notValidBefore)", "not_after": "\(certificate.leaf.notValidAfter)",
            ]
        )
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
    }
}
