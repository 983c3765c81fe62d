import NIOCore
import NIOHTTP1
import StranglerCore

/// What one exchange of a client connection has learned and holds besides its state machine:
/// its route, its upstream, its outbound request, the status it answered. Every exchange
/// starts from a fresh record, so nothing of the last one can leak into the next through a
/// field someone forgot to reset.
///
/// A value of plain fields, optionals, strings and references, held inline: starting a fresh
/// one allocates nothing.
struct ExchangeRecord {
    /// The matched route, shared with the loop's table: holding it costs one reference, not a
    /// copy of every field of the route.
    var matched: LoopContext.RouteEntry?
    var route: Route? { matched?.route }
    var routeID = "default"
    /// The route's index in the table it was matched in, and that table's traffic generation.
    var routeIndex = -1
    var trafficGeneration = 0
    /// The upstream serving the request now (legacy after a fallback).
    var upstreamName = ""
    /// The request as upstreams get it.
    var outbound: OutboundRequest?
    /// The client connection closes once this exchange is done.
    var closeAfterResponse: Bool
    /// Request body bytes read so far, against `maxBodyBytes` and `maxReplayBytes`.
    var bodyBytes = 0
    /// The pool of the current attempt's upstream. While the upstream timeout is armed its
    /// `upstream` is the one whose `timeoutMs` applies: the pool changes only when a new
    /// attempt starts, and the timer runs only once that attempt has its connection.
    var connectionPool: UpstreamPool?
    /// Request parts were written upstream since the last flush.
    var wroteUpstreamSinceFlush = false
    /// The status the client got (or 499 when it left first), for metrics and the access log.
    var responseStatus: UInt = 0

    /// - Parameter closeAfterResponse: the connection is already closing (the server quiesces).
    init(closeAfterResponse: Bool) {
        self.closeAfterResponse = closeAfterResponse
    }
}
