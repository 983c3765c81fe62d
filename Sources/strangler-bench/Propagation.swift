import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// `strangler-bench propagation`: how long a route change made through one instance takes to be
// served by another instance sharing the PostgreSQL store (DESIGN.md §5: "applied by every
// instance within a second"). It flips one route's mode back and forth through instance A's
// admin API and, for each flip, times
//   - A's answer: A commits the change, applies it itself, then answers;
//   - B: from sending the request to A until B's GET /api/routes shows the version A answered,
// with B polled on one keep-alive connection about every millisecond, on a thread of its own
// that starts before the first flip. bench/route-propagation starts the database and both
// instances around it.
//
//   strangler-bench propagation --admin-a URL --admin-b URL --token SECRET --route ID
//                               [--flips 100] [--modes legacy,shadow] [--poll-ms 1] [--pause-ms 100] [--warmup 2]
//
// The admin requests go over plain blocking sockets (PropagationHTTPConnection): this target
// does not link an HTTP client, and a loopback keep-alive connection read on its own thread
// adds the least to what is measured.

/// What the bench was asked to do.
struct PropagationOptions {
    var adminA: String
    var adminB: String
    var token: String
    var route: String
    var flips = 100
    /// The two modes the route moves between; moves between them must need no gate.
    var modes = ("legacy", "shadow")
    var pollInterval = Duration.milliseconds(1)
    var pause = Duration.milliseconds(100)
    var warmup = 2
    /// How long one flip may take to reach B before the bench gives up.
    var timeout = Duration.seconds(30)
}

/// Why the bench stopped.
struct PropagationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the bench and prints its figures as a markdown table.
func runPropagationBenchmark(_ options: PropagationOptions) throws {
    // A server that closes a connection must not end the bench on its next write.
    signal(SIGPIPE, SIG_IGN)
    let authorization = [("Authorization", "Bearer \(options.token)")]
    let a = try PropagationHTTPConnection(url: options.adminA)
    let b = try PropagationHTTPConnection(url: options.adminB)

    // The route's mode and the table version on A; B must serve the same table to begin with.
    let live = try liveTable(a, authorization)
    guard let route = live.routes.first(where: { $0["id"] as? String == options.route }) else {
        throw PropagationFailure(
            "A has no route \"\(options.route)\"; its routes: \(live.routes.compactMap { $0["id"] as? String }.joined(separator: ", "))"
        )
    }
    var mode = route["mode"] as? String ?? ""
    let watcher = VersionWatcher(connection: b, headers: authorization, interval: options.pollInterval)
    let thread = Thread { watcher.run() }
    thread.stackSize = 1 << 20
    thread.start()
    defer { watcher.stop() }
    guard watcher.waitFor(live.version, after: .now - .seconds(3600), timeout: options.timeout) != nil else {
        throw PropagationFailure(
            "B does not serve A's table version \(live.version) within \(options.timeout); B last showed \(watcher.current ?? "nothing")"
                + (watcher.lastError.map { " (\($0))" } ?? "")
        )
    }

    print(
        "propagation: route \(options.route) flipped \(options.modes.0) ⇄ \(options.modes.1) \(options.flips) times "
            + "(after \(options.warmup) warm-up flips) through A \(options.adminA); B \(options.adminB) polled every \(milliseconds(options.pollInterval))"
    )
    fflush(nil)
    var answered: [Duration] = []
    var appliedOnB: [Duration] = []
    var beforeA = 0
    for flip in 0..<(options.warmup + options.flips) {
        let target = mode == options.modes.0 ? options.modes.1 : options.modes.0
        let body = try JSONSerialization.data(withJSONObject: ["mode": target, "reason": "propagation bench"])
        let sent = ContinuousClock.now
        let response = try a.request(
            "POST",
            "/api/routes/\(options.route)/mode",
            headers: authorization + [("Content-Type", "application/json")],
            body: Array(body)
        )
        let answer = ContinuousClock.now
        let document = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        guard response.status == 200, let version = document?["tableVersionAfter"] as? String, document?["changed"] as? Bool == true else {
            throw PropagationFailure(
                "flip \(flip + 1) (\(options.route) \(mode) → \(target)): A answered \(response.status): "
                    + String(decoding: response.body.prefix(2000), as: UTF8.self)
            )
        }
        guard let seen = watcher.waitFor(version, after: sent, timeout: options.timeout) else {
            throw PropagationFailure(
                "flip \(flip + 1): B did not serve version \(version) within \(options.timeout); it last showed \(watcher.current ?? "nothing")"
                    + (watcher.lastError.map { " (\($0))" } ?? "")
            )
        }
        mode = target
        if flip >= options.warmup {
            answered.append(answer - sent)
            appliedOnB.append(seen - sent)
            if seen < answer { beforeA += 1 }
        }
        if options.pause > .zero { sleepFor(options.pause) }
    }
    let polls = watcher.polls
    print("")
    print("| from sending the flip to A until | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for (name, samples) in [("A answered (committed, and applied on A)", answered), ("B's GET /api/routes shows the new version", appliedOnB)] {
        let sorted = samples.sorted()
        let cells = [0.50, 0.90, 0.99].map { milliseconds(percentile(sorted, $0)) } + [milliseconds(sorted.last ?? .zero)]
        print("| \(name) | \(cells.joined(separator: " | ")) |")
    }
    print("")
    print(
        "\(options.flips) flips; B showed the new version before A's answer arrived in \(beforeA) of them; "
            + "B was polled \(polls.count) times (\(polls.failures) failed), one poll took \(milliseconds(polls.median)) (median)"
    )
    // Leave the route as it was found when the number of flips is odd.
    if (options.warmup + options.flips) % 2 == 1 {
        let body = try JSONSerialization.data(withJSONObject: ["mode": route["mode"] as? String ?? "", "reason": "propagation bench: restore"])
        _ = try? a.request(
            "POST",
            "/api/routes/\(options.route)/mode",
            headers: authorization + [("Content-Type", "application/json")],
            body: Array(body)
        )
    }
}

/// `GET /api/routes`: the live version and the routes.
private func liveTable(_ connection: PropagationHTTPConnection, _ headers: [(String, String)]) throws -> (version: String, routes: [[String: Any]]) {
    let response = try connection.request("GET", "/api/routes", headers: headers)
    guard response.status == 200, let document = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any],
        let version = document["version"] as? String
    else {
        throw PropagationFailure(
            "GET \(connection.base)/api/routes answered \(response.status): \(String(decoding: response.body.prefix(2000), as: UTF8.self))"
        )
    }
    return (version, document["routes"] as? [[String: Any]] ?? [])
}

/// The nearest-rank percentile of sorted samples.
private func percentile(_ sorted: [Duration], _ fraction: Double) -> Duration {
    guard !sorted.isEmpty else { return .zero }
    let rank = Int((fraction * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank, 1), sorted.count) - 1]
}

private func milliseconds(_ duration: Duration) -> String {
    let value = Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    return value < 10 ? String(format: "%.2f ms", value) : String(format: "%.1f ms", value)
}

private func sleepFor(_ duration: Duration) {
    let nanoseconds = duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
}

/// Polls B's `GET /api/routes` on a thread of its own and keeps when each version was first seen.
private final class VersionWatcher: @unchecked Sendable {
    struct Polls {
        var count = 0
        var failures = 0
        var median = Duration.zero
    }

    private let connection: PropagationHTTPConnection
    private let headers: [(String, String)]
    private let interval: Duration
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var seen: [(version: String, at: ContinuousClock.Instant)] = []
    private var stopped = false
    private var pollCount = 0
    private var failureCount = 0
    private var error: String?
    private var durations: [Duration] = []

    init(connection: PropagationHTTPConnection, headers: [(String, String)], interval: Duration) {
        self.connection = connection
        self.headers = headers
        self.interval = interval
    }

    /// The version B showed last.
    var current: String? { locked { seen.last?.version } }
    /// The last failed poll's error.
    var lastError: String? { locked { error } }
    var polls: Polls {
        locked {
            let sorted = durations.sorted()
            return Polls(count: pollCount, failures: failureCount, median: sorted.isEmpty ? .zero : sorted[sorted.count / 2])
        }
    }

    func stop() { locked { stopped = true } }

    func run() {
        while !locked({ stopped }) {
            let start = ContinuousClock.now
            do {
                let response = try connection.request("GET", "/api/routes", headers: headers)
                let at = ContinuousClock.now
                let version =
                    response.status == 200
                    ? ((try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any])?["version"] as? String : nil
                condition.lock()
                pollCount += 1
                if durations.count < 1_000_000 { durations.append(at - start) }
                if let version {
                    if seen.last?.version != version {
                        seen.append((version, at))
                        condition.broadcast()
                    }
                } else {
                    failureCount += 1
                    error = "GET /api/routes answered \(response.status)"
                }
                condition.unlock()
            } catch {
                locked {
                    pollCount += 1
                    failureCount += 1
                    self.error = "\(error)"
                }
            }
            sleepFor(interval)
        }
    }

    /// Waits until B shows `version` in a poll answered after `after`; returns when that answer
    /// arrived, or nil after `timeout`.
    func waitFor(_ version: String, after: ContinuousClock.Instant, timeout: Duration) -> ContinuousClock.Instant? {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        condition.lock()
        defer { condition.unlock() }
        while true {
            // Before `after` B showed another version (the flips wait for each other), so the
            // first answer since then that shows this one is when B began to serve it.
            if let first = seen.first(where: { $0.at > after && $0.version == version }) { return first.at }
            if !condition.wait(until: deadline) { return nil }
        }
    }

    private func locked<T>(_ body: () -> T) -> T {
        condition.lock()
        defer { condition.unlock() }
        return body()
    }
}

/// One keep-alive HTTP/1.1 connection over a blocking socket, reconnected when the server closes
/// it. Enough for the admin API on loopback: Content-Length or chunked bodies.
final class PropagationHTTPConnection: @unchecked Sendable {
    let base: String
    private let host: String
    private let port: Int
    private let prefix: String
    private var descriptor: Int32 = -1
    private var buffer: [UInt8] = []

    struct Response {
        var status: Int
        var body: [UInt8]
    }

    init(url: String) throws {
        guard let parsed = URL(string: url), parsed.scheme == "http", let host = parsed.host else {
            throw PropagationFailure("\(url): give an http://HOST:PORT admin URL")
        }
        base = url
        self.host = host
        port = parsed.port ?? 80
        prefix = parsed.path.hasSuffix("/") ? String(parsed.path.dropLast()) : parsed.path
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws -> Response {
        let reused = descriptor >= 0
        do {
            return try exchange(method, path, headers: headers, body: body)
        } catch {
            disconnect()
            // A keep-alive connection the server closed meanwhile: once more on a new one.
            guard reused else { throw error }
            return try exchange(method, path, headers: headers, body: body)
        }
    }

    private func exchange(_ method: String, _ path: String, headers: [(String, String)], body: [UInt8]?) throws -> Response {
        if descriptor < 0 { try openConnection() }
        var head = "\(method) \(prefix)\(path) HTTP/1.1\r\nHost: \(host):\(port)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        try sendAll(Array(head.utf8) + (body ?? []))

        // The head.
        var end: Int?
        while true {
            if let found = find([13, 10, 13, 10], in: buffer) {
                end = found
                break
            }
            try receiveMore()
        }
        let headText = String(decoding: buffer[..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        let lines = headText.components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw PropagationFailure("bad status line: \(lines[0])") }
        var length: Int?
        var chunked = false
        var closeAfter = false
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces).lowercased()
            switch name {
            case "content-length": length = Int(value)
            case "transfer-encoding": chunked = value.contains("chunked")
            case "connection": closeAfter = value.contains("close")
            default: break
            }
        }

        // The body.
        var body: [UInt8] = []
        let bodiless = method == "HEAD" || status == 204 || status == 304
        if bodiless {
            body = []
        } else if chunked {
            while true {
                var lineEnd = find([13, 10], in: buffer)
                while lineEnd == nil {
                    try receiveMore()
                    lineEnd = find([13, 10], in: buffer)
                }
                let sizeText = String(decoding: buffer[..<lineEnd!], as: UTF8.self).split(separator: ";").first ?? ""
                guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else {
                    throw PropagationFailure("bad chunk size \(sizeText)")
                }
                buffer.removeFirst(lineEnd! + 2)
                if size == 0 {
                    // Trailers end with an empty line.
                    while find([13, 10], in: buffer) == nil { try receiveMore() }
                    while let line = find([13, 10], in: buffer) {
                        buffer.removeFirst(line + 2)
                        if line == 0 { break }
                        while find([13, 10], in: buffer) == nil { try receiveMore() }
                    }
                    break
                }
                while buffer.count < size + 2 { try receiveMore() }
                body += buffer[..<size]
                buffer.removeFirst(size + 2)
            }
        } else if let length {
            while buffer.count < length { try receiveMore() }
            body = Array(buffer[..<length])
            buffer.removeFirst(length)
        } else {
            // Delimited by the end of the connection.
            while (try? receiveMore()) != nil {}
            body = buffer
            buffer = []
            closeAfter = true
        }
        if closeAfter { disconnect() }
        return Response(status: status, body: body)
    }

    private func openConnection() throws {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else {
            throw PropagationFailure("cannot resolve \(host)")
        }
        defer { freeaddrinfo(list) }
        var address: UnsafeMutablePointer<addrinfo>? = first
        var lastError = ECONNREFUSED
        while let candidate = address {
            let fd = socket(candidate.pointee.ai_family, candidate.pointee.ai_socktype, candidate.pointee.ai_protocol)
            if fd >= 0 {
                if connect(fd, candidate.pointee.ai_addr, candidate.pointee.ai_addrlen) == 0 {
                    var one: Int32 = 1
                    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                    var timeout = timeval(tv_sec: 30, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    descriptor = fd
                    buffer = []
                    return
                }
                lastError = errno
                close(fd)
            }
            address = candidate.pointee.ai_next
        }
        throw PropagationFailure("cannot connect to \(host):\(port): \(String(cString: strerror(lastError)))")
    }

    private func disconnect() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        buffer = []
    }

    private func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            if written < 0 {
                if errno == EINTR { continue }
                throw PropagationFailure("send to \(host):\(port): \(String(cString: strerror(errno)))")
            }
            offset += written
        }
    }

    private func receiveMore() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer += chunk[..<count]
                return
            }
            if count < 0, errno == EINTR { continue }
            throw PropagationFailure(
                count == 0 ? "\(host):\(port) closed the connection" : "receive from \(host):\(port): \(String(cString: strerror(errno)))"
            )
        }
    }
}

private func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    var index = 0
    while index <= haystack.count - needle.count {
        if haystack[index] == needle[0], Array(haystack[index..<(index + needle.count)]) == needle { return index }
        index += 1
    }
    return nil
}
