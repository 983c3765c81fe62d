import Foundation
import StranglerAdmin
import StranglerCore
import Testing

/// How `/api/routes` shows an upstream's TLS: absent for http, and loud when verification is off.
@Suite("Upstream TLS on /api/routes")
struct UpstreamDocumentTLSTests {
    static func json(_ upstream: Upstream) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(UpstreamDocument(upstream))) as? [String: Any])
    }

    @Test("an http upstream has no tls; a verified https one shows its SNI name and CA; an unverified one carries the warning")
    func documents() throws {
        let plain = try Self.json(Upstream(name: "legacy", url: "http://127.0.0.1:9000", host: "127.0.0.1", port: 9000))
        #expect(plain["tls"] == nil)

        let verified = try Self.json(
            Upstream(name: "oms", url: "https://oms.internal", host: "oms.internal", port: 443, tls: UpstreamTLS(caFile: "ca.pem"))
        )
        let tls = try #require(verified["tls"] as? [String: Any])
        #expect(tls["verify"] as? Bool == true)
        #expect(tls["serverName"] as? String == "oms.internal")
        #expect(tls["caFile"] as? String == "ca.pem")
        #expect(tls["warning"] == nil)

        let unverified = try Self.json(
            Upstream(name: "old", url: "https://10.0.0.7", host: "10.0.0.7", port: 443, tls: UpstreamTLS(insecureSkipVerify: true))
        )
        let loud = try #require(unverified["tls"] as? [String: Any])
        #expect(loud["verify"] as? Bool == false)
        #expect(loud["serverName"] == nil, "an IP literal sends no SNI")
        #expect((loud["warning"] as? String)?.contains("verification is off") == true)
    }
}
