import Logging
import NIOCore
import NIOHTTP1

/// One exchange's access-log line: `METHOD target status`, with its request ID, route, mode,
/// upstream, status, time taken (milliseconds, two decimals), client address and outcome.
///
/// Built only when the access log is on and logs at `info`, so its strings cost nothing
/// otherwise.
struct AccessLogLine {
    /// `METHOD target status`.
    let message: Logger.Message
    /// The exchange's fields, named as log processors expect them.
    let metadata: Logger.Metadata

    init(
        method: HTTPMethod,
        uri: String,
        record: ExchangeRecord,
        requestID: RequestIDValue,
        client: String,
        outcome: ExchangeOutcome,
        elapsed: TimeAmount
    ) {
        let millis = Double(elapsed.nanoseconds) / 1_000_000
        message = "\(method.rawValue) \(uri) \(record.responseStatus)"
        metadata = [
            "request_id": "\(requestID.string)", "route": "\(record.routeID)", "mode": "\(record.route?.mode.rawValue ?? "default")",
            "upstream": "\(record.upstreamName)", "status": "\(record.responseStatus)",
            "ms": "\((millis * 100).rounded() / 100)", "client": "\(client)",
            "outcome": "\(outcome.name)",
        ]
    }
}
