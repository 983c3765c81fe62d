import Foundation
import StranglerControl
import StranglerProxy

/// Who may use the admin API: named bearer tokens, and whether reads are open.
///
/// Writes always need `Authorization: Bearer <token>`: without one the answer is 401, with an
/// unknown one 403. Reads (`/api/...`) need a token too when tokens are configured, unless
/// `openReads` is set; health, readiness, `/metrics` and `/openapi.json` are always open.
public struct AdminAccess: Sendable {
    /// A token and the name the audit trail records for it.
    public struct Token: Sendable, Hashable {
        /// The name the audit trail records as the actor of changes made with this token.
        public var name: String
        /// The bearer secret a client presents; ``AdminAccess/load(file:environment:)`` requires
        /// at least ``AdminAccess/minimumSecretLength`` characters.
        public var secret: String

        /// Creates a token as given; no length check is made here.
        public init(name: String, secret: String) {
            self.name = name
            self.secret = secret
        }
    }

    /// Shortest secret accepted: a guessable token on an admin port is worse than none.
    public static let minimumSecretLength = 16

    /// The tokens accepted; with none, reads are open and every write is refused.
    public var tokens: [Token]
    /// Serve `/api/...` reads without a token.
    public var openReads: Bool

    /// Creates the access rules; the default (no tokens) opens reads and refuses all writes.
    public init(tokens: [Token] = [], openReads: Bool = false) {
        self.tokens = tokens
        self.openReads = openReads
    }

    /// Tokens from `--admin-token-file` and `STRANGLER_ADMIN_TOKEN`.
    ///
    /// The file has one token per line, `name:secret` or a bare `secret` (named `admin`);
    /// blank lines and `#` comments are skipped. The variable holds one token in the same form.
    ///
    /// - Throws: ``AdminAccessError`` when the file cannot be read or holds no token, a name is
    ///   empty, or a secret is shorter than ``minimumSecretLength``.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [Token] {
        var tokens: [Token] = []
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw AdminAccessError("cannot read the admin token file \(file); check the path and its permissions")
            }
            for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty || text.hasPrefix("#") { continue }
                tokens.append(try parse(text, at: "\(file):\(number + 1)"))
            }
            if tokens.isEmpty { throw AdminAccessError("the admin token file \(file) has no token; add a line `name:secret`") }
        }
        if let value = environment["STRANGLER_ADMIN_TOKEN"]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty {
            tokens.append(try parse(value, at: "STRANGLER_ADMIN_TOKEN"))
        }
        return tokens
    }

    private static func parse(_ text: String, at place: String) throws -> Token {
        var name = "admin"
        var secret = text
        if let colon = text.firstIndex(of: ":") {
            name = String(text[..<colon]).trimmingCharacters(in: .whitespaces)
            secret = String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
        }
        guard !name.isEmpty else { throw AdminAccessError("\(place): the token's name before \":\" is empty") }
        guard secret.count >= minimumSecretLength else {
            throw AdminAccessError(
                "\(place): the token for \"\(name)\" is \(secret.count) characters; use at least \(minimumSecretLength) (for example `openssl rand -hex 32`)"
            )
        }
        return Token(name: name, secret: secret)
    }

    /// Refuses an admin listener off loopback without a token: it would let anyone on the
    /// network flip routes.
    ///
    /// - Throws: ``AdminAccessError`` when `host` is not a loopback address and there is no token.
    public func checkBinding(host: String) throws {
        guard tokens.isEmpty, !Self.isLoopback(host) else { return }
        throw AdminAccessError(
            "refusing to bind the admin listener to \(host) without a token: anyone who can reach it could change routes. Pass --admin-token-file FILE (or set STRANGLER_ADMIN_TOKEN), or keep --admin-listen on 127.0.0.1"
        )
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The outcome of checking a request's credentials.
    public enum Decision: Sendable, Equatable {
        /// Allowed; the name of the token used, if one was.
        case allowed(tokenName: String?)
        /// 401: no usable `Authorization: Bearer` header.
        case missing(String)
        /// 403: a token that is not one of ours.
        case wrong(String)
    }

    /// Checks the `Authorization` header of a request.
    ///
    /// - Parameters:
    ///   - authorization: The request's `Authorization` header, if any.
    ///   - write: Whether the request changes something (it then always needs a token).
    /// - Returns: Whether to serve the request, and with which token's name.
    public func decide(authorization: String?, write: Bool) -> Decision {
        if !write, openReads || tokens.isEmpty { return .allowed(tokenName: nil) }
        guard let authorization, authorization.lowercased().hasPrefix("bearer "),
            case let presented = authorization.dropFirst("bearer ".count).trimmingCharacters(in: .whitespaces), !presented.isEmpty
        else {
            if tokens.isEmpty {
                return .missing(
                    "admin writes need a bearer token, and this proxy has none configured; its operator must give it admin tokens"
                )
            }
            return .missing("this endpoint needs `Authorization: Bearer <token>`")
        }
        for token in tokens where Self.constantTimeEqual(token.secret, presented) {
            return .allowed(tokenName: token.name)
        }
        return .wrong("the bearer token is not one this proxy accepts")
    }

    /// Compares without stopping at the first difference, so timing does not leak the secret.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }
}

/// A problem with the admin API's access configuration.
public struct AdminAccessError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and how to fix it, for the operator.
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
