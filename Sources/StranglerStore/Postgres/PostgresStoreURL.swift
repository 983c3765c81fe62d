import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://` (or `postgresql://`) store URL: where the shared store is, and how to log in.
///
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require]`. The port
/// defaults to 5432. Without `sslmode` the connection is plain TCP on a loopback host and
/// prefers TLS elsewhere; `require` refuses a server without it.
public struct PostgresStoreURL: Sendable, Equatable, CustomStringConvertible {
    /// How the connection uses TLS.
    public enum TLSMode: String, Sendable, Equatable {
        case disable, prefer, require
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    /// Whether `text` names a PostgreSQL store rather than a SQLite file.
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Reads a store URL; the error names the part that is wrong.
    public init(_ text: String) throws(PostgresStoreURLError) {
        guard Self.isPostgres(text), let components = URLComponents(string: text) else {
            throw .notAURL(text)
        }
        guard let host = components.host, !host.isEmpty else { throw .missing(part: "host", url: Self.redacted(text)) }
        guard let user = components.user, !user.isEmpty else { throw .missing(part: "user", url: Self.redacted(text)) }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw .missing(part: "database", url: Self.redacted(text)) }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.removingPercentEncoding ?? database
        let mode = components.queryItems?.first { $0.name == "sslmode" }?.value
        switch mode {
        case nil:
            tls = ["127.0.0.1", "::1", "localhost"].contains(host) ? .disable : .prefer
        case let value?:
            guard let parsed = TLSMode(rawValue: value) else { throw .badSSLMode(value) }
            tls = parsed
        }
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        "postgres://\(username)@\(host):\(port)/\(database)"
    }

    /// One connection's configuration: the store's first contact, which reports the server's own
    /// refusal (a wrong password, a missing database) where the pool would only time out.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let mode: PostgresConnection.Configuration.TLS =
            switch tls {
            case .disable: .disable
            case .prefer: .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        var configuration = PostgresConnection.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: mode
        )
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// The client configuration PostgresNIO connects with.
    var clientConfiguration: PostgresClient.Configuration {
        let mode: PostgresClient.Configuration.TLS =
            switch tls {
            case .disable: .disable
            case .prefer: .prefer(.makeClientConfiguration())
            case .require: .require(.makeClientConfiguration())
            }
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: mode
        )
        // A TCP connect gives up after this; how long a query waits for a connection is bounded
        // by the store itself (PostgresDiffStore's operation timeout), as PostgresNIO's pool
        // would hold it while it retries an unreachable server.
        configuration.options.connectTimeout = .seconds(5)
        // The server's own backstop for a statement the store stopped waiting for, on a
        // connection it can no longer reach.
        configuration.options.additionalStartupParameters = [("statement_timeout", "60s")]
        return configuration
    }

    private static func redacted(_ text: String) -> String {
        guard var components = URLComponents(string: text) else { return "the URL" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "the URL"
    }
}

/// A store URL that can't be used, and why.
public enum PostgresStoreURLError: Error, Sendable, Equatable, CustomStringConvertible {
    case notAURL(String)
    case missing(part: String, url: String)
    case badSSLMode(String)

    public var description: String {
        switch self {
        case .notAURL:
            "the store URL is not a postgres:// URL; write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        case .missing(let part, let url):
            "the store URL \(url) has no \(part); write postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        case .badSSLMode(let value):
            "sslmode=\(value) is not one of disable, prefer, require"
        }
    }
}
