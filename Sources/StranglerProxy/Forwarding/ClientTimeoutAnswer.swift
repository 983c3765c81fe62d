import NIOCore

/// What a client connection does when one of its own bounds (``ClientTimeouts``) expires.
///
/// Pure, so that ``ProxyHandler`` only carries it out; the metric label and the answer are
/// decided together, so a bound that is counted is always the one acted on.
enum ClientTimeoutAnswer {
    /// The staged close is over: close, with nothing to count.
    case closeLingering
    /// Nothing of a request arrived: close without an answer, as nginx does, since an answer
    /// could cross a request the client is sending just now.
    case close(ClientTimeoutKind)
    /// Part of a request arrived and no response has started: answer 408, then close in stages.
    case answer(ClientTimeoutKind, ProxyError)
    /// A response has started (or the client stopped taking it): end the exchange and the
    /// connection at once, recorded as `outcome`.
    case abort(ClientTimeoutKind, ExchangeOutcome)

    /// The answer to `expiry`, with `limits` for the error's text; `responseStarted` says
    /// whether a 408 can still be written.
    static func choose(_ expiry: ClientTimeouts.Expiry, limits: ClientTimeouts.Limits, responseStarted: Bool) -> ClientTimeoutAnswer {
        switch expiry {
        case .linger:
            return .closeLingering
        case .keepAlive:
            return .close(.keepAlive)
        case .header(partial: false):
            return .close(.header)
        case .header(partial: true):
            return .answer(.header, .requestTimeout("the request head did not arrive within \(describe(limits.header))"))
        case .body:
            if responseStarted { return .abort(.body, .clientBodyTimeout) }
            return .answer(.body, .requestTimeout("the client sent no request body bytes for \(describe(limits.body))"))
        case .send:
            return .abort(.send, .clientSendTimeout)
        }
    }

    /// A bound's length as its error text gives it: whole seconds as `30 s`, else milliseconds.
    static func describe(_ amount: TimeAmount) -> String {
        let millis = amount.nanoseconds / 1_000_000
        return millis % 1000 == 0 ? "\(millis / 1000) s" : "\(millis) ms"
    }
}
