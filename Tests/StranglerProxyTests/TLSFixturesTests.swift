import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import StranglerTLS
import StranglerTestSupport
import Testing

/// The TLS fixtures are real certificates: a TLS stack that trusts the test CA accepts the
/// server certificate and refuses the untrusted, expired and wrong-host ones, and other stacks
/// (curl, OpenSSL) agree. Every later TLS test builds on this.
@Suite("TLS fixtures")
struct TLSFixturesTests {
    @Test("a client trusting the test CA gets an answer from a TLS upstream with the server certificate")
    func handshakeWithServerCertificate() async throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let upstream = try await TestUpstream(name: "tls", tls: fixtures.serverContext(fixtures.server))
        let response = try await TLSProbe.get(port: upstream.port, context: fixtures.clientContext())
        await upstream.stop()
        #expect(response.status == 200)
        #expect(response.body.contains("\"upstream\":\"tls\""))
        #expect(upstream.requests.map(\.uri) == ["/echo"])
        #expect(upstream.requests.first?.clientCertificateCommonName == nil)
    }

    @Test("the same client refuses the untrusted and the expired certificates in the handshake", arguments: ["untrusted", "expired"])
    func handshakeRefused(certificate: String) async throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let (error, upstream) = try await Self.handshakeError(
            presenting: certificate == "untrusted" ? fixtures.untrusted : fixtures.expired,
            fixtures: fixtures
        )
        let failure = try #require(error, "the handshake with the \(certificate) certificate succeeded")
        guard case NIOSSLError.handshakeFailed = failure else {
            Issue.record("expected a handshake failure with the \(certificate) certificate, got \(failure)")
            return
        }
        #expect(upstream.requests.isEmpty)
    }

    @Test("the same client refuses the wrong-host certificate: it names another host")
    func wrongHostRefused() async throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let (error, upstream) = try await Self.handshakeError(presenting: fixtures.wrongHost, fixtures: fixtures)
        // NIOSSL checks the name itself once BoringSSL has verified the chain.
        #expect(error as? NIOSSLExtraError == .failedToValidateHostname)
        #expect(upstream.requests.isEmpty)
    }

    /// What ends a request to a TLS upstream presenting `identity`, for a client trusting the
    /// test CA; nil when the request is answered. The upstream is stopped.
    private static func handshakeError(
        presenting identity: TLSFixtures.Identity,
        fixtures: TLSFixtures
    ) async throws -> ((any Error)?, TestUpstream) {
        let upstream = try await TestUpstream(name: "tls", tls: fixtures.serverContext(identity))
        let error: (any Error)?
        do {
            _ = try await TLSProbe.get(port: upstream.port, context: fixtures.clientContext())
            error = nil
        } catch let caught {
            error = caught
        }
        await upstream.stop()
        return (error, upstream)
    }

    @Test("mutual TLS: the upstream sees the client certificate, and refuses a client without one")
    func clientCertificate() async throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let upstream = try await TestUpstream(
            name: "mtls",
            tls: fixtures.serverContext(fixtures.server, requireClientCertificate: true)
        )
        let response = try await TLSProbe.get(port: upstream.port, context: fixtures.clientContext(presenting: fixtures.client))
        // In TLS 1.3 the client finishes its handshake before the server has checked its
        // certificate, so a refusal shows as an error or as a connection closed with no answer.
        let refused = try? await TLSProbe.get(port: upstream.port, context: fixtures.clientContext())
        await upstream.stop()
        #expect(response.status == 200)
        #expect(upstream.requests.map(\.clientCertificateCommonName) == [TLSFixtures.clientCommonName])
        #expect(refused == nil)
    }

    @Test("curl with --cacert gets an answer by host name and by IP address")
    func curlTrustsTheTestCA() async throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let upstream = try await TestUpstream(name: "tls", tls: fixtures.serverContext(fixtures.server))
        let byName = try await Curl.run(["--cacert", fixtures.ca.certificateFile.path, "https://localhost:\(upstream.port)/echo"])
        let byAddress = try await Curl.run(["--cacert", fixtures.ca.certificateFile.path, "https://127.0.0.1:\(upstream.port)/echo"])
        // curl's exit status 60: the peer's certificate could not be verified.
        let untrustedCA = try await Curl.run(["--cacert", fixtures.otherCA.certificateFile.path, "https://localhost:\(upstream.port)/echo"])
        await upstream.stop()
        #expect(byName.status == 0, "\(byName.errors)")
        #expect(byName.output.contains("\"upstream\":\"tls\""))
        #expect(byAddress.status == 0, "\(byAddress.errors)")
        #expect(byAddress.output.contains("\"upstream\":\"tls\""))
        #expect(untrustedCA.status == 60, "\(untrustedCA.errors)")
        #expect(upstream.requests.count == 2)
    }

    @Test("OpenSSL verifies the server and client certificates for their purposes, and not the untrusted one")
    func opensslVerifies() throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        let openssl = try #require(TLSProbe.executable("openssl"), "openssl is not on PATH")
        func verify(_ purpose: String, _ identity: TLSFixtures.Identity) throws -> Int32 {
            try ChildProcess.run(
                openssl,
                ["verify", "-CAfile", fixtures.ca.certificateFile.path, "-purpose", purpose, identity.certificateFile.path],
                environment: [:],
                mergeErrors: true
            ).status
        }
        #expect(try verify("sslserver", fixtures.server) == 0)
        #expect(try verify("sslclient", fixtures.client) == 0)
        // The usages are limited: a server certificate is no client certificate, and back.
        #expect(try verify("sslclient", fixtures.server) != 0)
        #expect(try verify("sslserver", fixtures.client) != 0)
        #expect(try verify("sslserver", fixtures.untrusted) != 0)
        #expect(try verify("sslserver", fixtures.expired) != 0)
    }

    @Test("key files are readable by their owner only")
    func keyFileMode() throws {
        let fixtures = try TLSFixtures()
        defer { fixtures.remove() }
        for identity in [fixtures.ca, fixtures.server, fixtures.client] {
            let key = try FileManager.default.attributesOfItem(atPath: identity.keyFile.path)
            let certificate = try FileManager.default.attributesOfItem(atPath: identity.certificateFile.path)
            #expect((key[.posixPermissions] as? NSNumber)?.intValue == 0o600)
            #expect((certificate[.posixPermissions] as? NSNumber)?.intValue == 0o644)
            #expect(try String(contentsOf: identity.keyFile, encoding: .utf8) == identity.privateKeyPEM)
        }
    }

    @Test("a server certificate needs a name, and IP addresses must be literals")
    func invalidRequests() throws {
        let authority = try LocalCertificateAuthority.make(commonName: "invalid requests")
        #expect(throws: LocalCertificateAuthorityError.noServerNames) {
            try authority.issueServer(dnsNames: [], ipAddresses: [])
        }
        #expect(throws: LocalCertificateAuthorityError.invalidIPAddress("localhost")) {
            try authority.issueServer(dnsNames: [], ipAddresses: ["localhost"])
        }
    }
}

/// A one-request HTTPS client on NIO, and where to find a tool on PATH.
enum TLSProbe {
    struct Response: Sendable {
        var status: Int
        var body: String
    }

    /// Sends `GET /echo` as raw bytes over TLS to `127.0.0.1:port`, verifying `serverHostname`,
    /// and returns the response, or throws what ended the connection first (a handshake error).
    static func get(port: Int, context: NIOSSLContext, serverHostname: String = "localhost") async throws -> Response {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let response = try await get(port: port, context: context, serverHostname: serverHostname, group: group)
            try await group.shutdownGracefully()
            return response
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func get(port: Int, context: NIOSSLContext, serverHostname: String, group: EventLoopGroup) async throws -> Response {
        let promise = group.next().makePromise(of: Response.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    try operations.addHandler(ResponseCollector(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        // NIOSSL holds the bytes until the handshake is done; a failed handshake fails the
        // promise with its error.
        channel.writeAndFlush(
            ByteBuffer(string: "GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
            promise: nil
        )
        defer { channel.close(promise: nil) }
        return try await promise.futureResult.get()
    }

    /// The absolute path of `name` on PATH.
    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
}

/// Collects one response framed by `Content-Length` (all that `/echo` sends), or the first
/// error. The bytes are read as they are, so nothing but the TLS handler sits between the test
/// and the wire.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<TLSProbe.Response>
    private var received: [UInt8] = []

    init(promise: EventLoopPromise<TLSProbe.Response>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytesView
        let separator = Array("\r\n\r\n".utf8)
        guard let end = received.indices.first(where: { received[$0...].starts(with: separator) }) else { return }
        let head = String(decoding: received[..<end], as: UTF8.self).split(separator: "\r\n")
        let status = head.first.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
        let length =
            head.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
        let body = received[(end + separator.count)...]
        guard body.count >= length else { return }
        promise.succeed(TLSProbe.Response(status: status, body: String(decoding: body.prefix(length), as: UTF8.self)))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Does nothing when the promise has completed already.
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
