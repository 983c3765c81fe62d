import StranglerCore

extension ProxyError {
    /// A failure of the upstream connection during an exchange, as the proxy reports it: the
    /// connection's own ``ProxyError`` when it has one, else an invalid response if the head
    /// had been read (`responseStarted`), else a close before the answer.
    init(upstreamFailure error: any Error, upstream: String, responseStarted: Bool) {
        if let known = error as? ProxyError {
            self = known
        } else if responseStarted {
            self = .invalidResponse("upstream \"\(upstream)\" failed in its response: \(error)")
        } else {
            self = .upstreamClosed("upstream \"\(upstream)\" failed before answering: \(error)")
        }
    }

    /// A request whose declared body (`length` bytes) is over `limit`: 413 before anything is
    /// forwarded.
    init(declaredBody length: Int, limit: Int) {
        self = .bodyTooLarge("the request body is \(length) bytes; this proxy accepts at most \(limit)")
    }

    /// A request whose body grew past `limit` while it was read: 413, ending any upstream call.
    init(bodyOver limit: Int) {
        self = .bodyTooLarge("the request body exceeded \(limit) bytes, the most this proxy accepts")
    }

    /// The upstream sent nothing for its `timeoutMs`.
    init(silentUpstream upstream: Upstream) {
        self = .upstreamTimeout("upstream \"\(upstream.name)\" (\(upstream.authority)) sent nothing for \(upstream.timeoutMs) ms (timeoutMs)")
    }
}
