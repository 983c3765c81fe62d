import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import StranglerCore

/// Names the cause of a failed certificate verification.
///
/// BoringSSL reports only "certificate verify failed" and keeps the reason on the connection,
/// which swift-nio-ssl does not expose. So after such a failure the pool connects once more,
/// takes the chain the upstream presents without trusting it (the handshake is then failed on
/// purpose: no request is ever sent on this connection), and reads its dates. Only failures
/// pay for this, and a pool asks at most once per ``UpstreamPool/diagnosisInterval``.
enum UpstreamTLSDiagnosis {
    /// Accepts any chain for the callback to look at; never used to send anything.
    private static let inspecting: NIOSSLContext? = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .noHostnameVerification
        // No roots to load (the callback decides, and fails every handshake): built on first
        // use, which is on an event loop, it must not parse the system's CA bundle there.
        configuration.trustRoots = .certificates([])
        return try? NIOSSLContext(configuration: configuration)
    }()

    /// The cause of `failure` for `upstream`: expired or not yet valid when a certificate's
    /// dates say so, otherwise `failure` as it was. Bounded by the upstream's connect timeout
    /// as a whole (connect and handshake): an upstream that accepts and then says nothing gives
    /// `failure` back in time.
    static func diagnose(
        _ failure: UpstreamTLSFailure,
        upstream: Upstream,
        serverHostname: String?,
        on eventLoop: EventLoop
    ) -> EventLoopFuture<UpstreamTLSFailure> {
        guard let inspecting else { return eventLoop.makeSucceededFuture(failure) }
        let promise = eventLoop.makePromise(of: [NIOSSLCertificate].self)
        let done = NIOLockedValueBox(false)
        let connected = NIOLockedValueBox<Channel?>(nil)
        let complete: @Sendable (Result<[NIOSSLCertificate], Error>) -> Void = { result in
            // The callback, the close and the deadline can all report; the first one counts.
            let first = done.withLockedValue { was in
                defer { was = true }
                return !was
            }
            guard first else { return }
            connected.withLockedValue { $0 }?.close(promise: nil)
            promise.completeWith(result)
        }
        let deadline = eventLoop.scheduleTask(in: .milliseconds(Int64(upstream.connectTimeoutMs))) {
            complete(.failure(ChannelError.connectTimeout(.milliseconds(Int64(upstream.connectTimeoutMs)))))
        }
        promise.futureResult.whenComplete { _ in deadline.cancel() }
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(upstream.connectTimeoutMs)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(context: inspecting, serverHostname: serverHostname) { certificates, verification in
                        complete(.success(certificates))
                        verification.succeed(NIOSSLVerificationResult.failed)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    connected.withLockedValue { $0 = channel }
                    // Reported already (the deadline passed while connecting): close it now.
                    if done.withLockedValue({ $0 }) { channel.close(promise: nil) }
                    channel.closeFuture.whenComplete { _ in complete(.failure(ChannelError.ioOnClosedChannel)) }
                case .failure(let error):
                    complete(.failure(error))
                }
            }
        return promise.futureResult.map { classify($0, now: Date()) ?? failure }.recover { _ in failure }
    }

    /// Expired or not yet valid, naming the certificate and the date; nil when the dates are
    /// fine (the issuer is what is not trusted).
    static func classify(_ certificates: [NIOSSLCertificate], now: Date) -> UpstreamTLSFailure? {
        let seconds = now.timeIntervalSince1970
        for (index, certificate) in certificates.enumerated() {
            let which = index == 0 ? "the upstream's certificate" : "certificate \(index + 1) of the chain it presents"
            let notAfter = Double(certificate.notValidAfter)
            let notBefore = Double(certificate.notValidBefore)
            if notAfter < seconds {
                return .init(.certificateExpired, "\(which) expired on \(timestamp(notAfter)); renew it")
            }
            if notBefore > seconds {
                return .init(.certificateNotYetValid, "\(which) is valid only from \(timestamp(notBefore)); check the clocks")
            }
        }
        return nil
    }

    private static func timestamp(_ seconds: Double) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }
}
