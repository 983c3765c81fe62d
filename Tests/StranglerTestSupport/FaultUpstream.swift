import Foundation
import NIOConcurrencyHelpers
import StranglerAdmin
import StranglerControl
import StranglerProxy

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An upstream that misbehaves on request, for the fault matrix: blocking sockets, a thread per
/// connection, and nothing between the test and the bytes on the wire (no HTTP library that
/// would refuse to send a broken response).
///
/// What happens to a connection right after `accept` is set with ``onAccept`` (serve, close,
/// reset). A served connection reads requests one after another; each request's fault is the
/// path's second segment (`/p/<fault>/...`, `/sh/<fault>/...`), and `ok` (or anything unknown)
/// is a healthy keep-alive answer, `ok <connection number>`. Every request is recorded with the
/// number of the connection it came on, so a test can tell whether the proxy reused a
/// connection it should have dropped.
///
/// The faults (``respond(to:on:connectionNumber:)`` has the bytes):
/// - silence: `hang-head` (no answer), `head-hang` (a head, then nothing), `slow-drip` (the head
///   a byte every 10 ms, then a 4-byte body a byte a second);
/// - short answers: `short-body` (Content-Length 100, 10 bytes, close), `short-chunked` (a chunk,
///   then close);
/// - bad heads: `garbage-status`, `header-nul`, `header-bare-cr`, `header-obs-fold`,
///   `cl-conflict`, `cl-and-chunked`, `huge-head` (1 MB), `switching-101`;
/// - bad chunks: `chunk-nonhex`, `chunk-overflow`, `chunk-no-crlf` (in the head's write), and
///   `chunk-nonhex-late` (after a good chunk, once the gate opens);
/// - interim answers: `interim-100`, `interim-103`, each before a 200;
/// - bodies that must not be there: `head-body` (for a HEAD), `no-content-body` (204),
///   `not-modified-body` (304), each in the head's write;
/// - keep-alive that goes stale: `stale-close` / `stale-reset` (the next request on the
///   connection is met with a close / a reset), `idle-close` (closed 50 ms after the answer);
/// - early answers: `early-413` (before reading the body; then reads nothing more),
///   `early-413-late` (the same, once the gate opens), `early-400` (then a staged close).
///
/// Unchecked `Sendable`: its state is behind a lock; the rest is set in `init`.
package final class FaultUpstream: @unchecked Sendable {
    package enum AcceptMode: Sendable {
        /// Read requests and answer them by their fault.
        case serve
        /// Close the connection at once, without reading.
        case close
        /// Reset the connection at once (SO_LINGER 0, then close).
        case reset
    }

    package struct SeenRequest: Sendable {
        /// The connection's number, from 1 in order of accept.
        package var connection: Int
        package var method: String
        package var target: String
        package var fault: String
    }

    private struct State {
        package var onAccept = AcceptMode.serve
        package var seen: [SeenRequest] = []
        package var accepted = 0
        package var closed: Set<Int> = []
        /// Open connections by number; `stop` shuts them down to end their threads.
        package var open: [Int: Int32] = [:]
        package var stopped = false
    }

    package let port: Int
    private let listener: Int32
    private let state = NIOLockedValueBox(State())
    /// Faults named `...-late` send the first part of their answer, wait here for ``openGate()``
    /// (at most 20 s), then send the rest: the test decides when the proxy has relayed the first
    /// part, so nothing depends on timing.
    private let gate = DispatchSemaphore(value: 0)

    /// The size of `huge-head`'s head.
    package static let hugeHeadBytes = 1024 * 1024

    package init() throws {
        (listener, port) = try LoopbackSocket.bound(listen: 128, reuseAddress: true)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "fault-upstream-accept"
        thread.start()
    }

    // MARK: - What the test sees

    package var onAccept: AcceptMode {
        get { state.withLockedValue { $0.onAccept } }
        set { state.withLockedValue { $0.onAccept = newValue } }
    }

    /// Every request read, in order.
    package var requests: [SeenRequest] { state.withLockedValue { $0.seen } }

    /// The requests whose fault (the path's second segment) is `fault`.
    package func requests(fault: String) -> [SeenRequest] { requests.filter { $0.fault == fault } }

    package var acceptedConnections: Int { state.withLockedValue { $0.accepted } }

    /// Whether connection number `connection` has been closed (by either side).
    package func isClosed(_ connection: Int) -> Bool { state.withLockedValue { $0.closed.contains(connection) } }

    /// Lets one waiting `...-late` answer go on.
    package func openGate() { gate.signal() }

    /// Waits (polling, at most `seconds`) until `condition` holds; returns whether it did.
    package func wait(seconds: Double = 20, until condition: (FaultUpstream) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while !condition(self) {
            if Date() > deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Stops accepting and ends every connection's thread.
    package func stop() {
        state.withLockedValue { state in
            guard !state.stopped else { return }
            state.stopped = true
            // Ends the blocked accept (the accept thread closes the listener) and every blocked
            // read; each thread closes its own descriptor, so no number is closed twice.
            shutdown(listener, Int32(SHUT_RDWR))
            for descriptor in state.open.values { shutdown(descriptor, Int32(SHUT_RDWR)) }
        }
        for _ in 0..<8 { gate.signal() }
    }

    deinit { stop() }

    // MARK: - Connections

    private func acceptLoop() {
        while true {
            let descriptor = accept(listener, nil, nil)
            if descriptor < 0 {
                if errno == EINTR { continue }
                break
            }
            let (number, mode, stopped) = state.withLockedValue { state -> (Int, AcceptMode, Bool) in
                state.accepted += 1
                if !state.stopped { state.open[state.accepted] = descriptor }
                return (state.accepted, state.onAccept, state.stopped)
            }
            if stopped {
                close(descriptor)
                break
            }
            var one: Int32 = 1
            setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            switch mode {
            case .close:
                finish(number, descriptor)
            case .reset:
                finish(number, descriptor, reset: true)
            case .serve:
                let thread = Thread { [self] in serve(number, descriptor) }
                thread.name = "fault-upstream-\(number)"
                thread.start()
            }
        }
        close(listener)
    }

    /// Closes a connection's descriptor once it is no longer listed for `stop`.
    private func finish(_ number: Int, _ descriptor: Int32, reset: Bool = false) {
        state.withLockedValue { state in
            state.open[number] = nil
            state.closed.insert(number)
        }
        if reset {
            var option = linger(l_onoff: 1, l_linger: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        }
        close(descriptor)
    }

    /// A request as read: the head's fields the faults need, and the body when it was read.
    private struct Request {
        package var method: String
        package var target: String
        package var fault: String
        package var contentLength: Int
    }

    /// What a fault does with the connection after its answer.
    private enum After {
        /// Read the next request.
        case keepServing
        /// Close it now.
        case close
        /// Reset it now (SO_LINGER 0, then close).
        case reset
        /// Read and discard until the proxy closes it.
        case hang
        /// Read nothing more, and wait until the proxy closes it.
        case holdWithoutReading
        /// Shut the write side, then read and discard until the proxy closes (a staged close).
        case stagedClose
    }

    private func serve(_ number: Int, _ descriptor: Int32) {
        let connection = Connection(descriptor: descriptor)
        // Set once this connection served a `stale-close` (`stale-reset`) answer: the next
        // request on it is met with a close (a reset), as when an upstream drops an idle
        // keep-alive connection just as the proxy reuses it.
        var dropNextRequest: After?
        var after = After.keepServing
        while case .keepServing = after {
            guard let request = connection.readHead() else { break }
            state.withLockedValue {
                $0.seen.append(SeenRequest(connection: number, method: request.method, target: request.target, fault: request.fault))
            }
            if let drop = dropNextRequest {
                _ = connection.readBody(request.contentLength)
                after = drop
                break
            }
            // Most faults read the whole request first; an early answer does not.
            if !request.fault.hasPrefix("early-") {
                guard connection.readBody(request.contentLength) else { break }
            }
            after = respond(to: request, on: connection, connectionNumber: number)
            if request.fault == "stale-close" { dropNextRequest = .close }
            if request.fault == "stale-reset" { dropNextRequest = .reset }
            if request.fault == "idle-close" {
                // Keep-alive answered; the connection is dropped while it sits idle in the pool.
                Thread.sleep(forTimeInterval: 0.05)
                after = .close
            }
        }
        switch after {
        case .keepServing, .close:
            break
        case .reset:
            finish(number, descriptor, reset: true)
            return
        case .hang:
            connection.discardUntilClosed()
        case .holdWithoutReading:
            holdUntilHangUp(descriptor)
        case .stagedClose:
            shutdown(descriptor, Int32(SHUT_WR))
            connection.discardUntilClosed()
        }
        finish(number, descriptor)
    }

    /// Waits, reading nothing, until the other side closes (or `stop`).
    private func holdUntilHangUp(_ descriptor: Int32) {
        // POLLRDHUP (0x2000): the peer shut its side, whether or not unread bytes wait.
        let hangUp: Int16 = 0x2000 | Int16(POLLHUP) | Int16(POLLERR)
        var entry = pollfd(fd: descriptor, events: 0x2000, revents: 0)
        while !state.withLockedValue({ $0.stopped }) {
            if poll(&entry, 1, 100) > 0, entry.revents & hangUp != 0 { return }
        }
    }

    // MARK: - Faults

    private static let ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"

    /// Answers `request` with its fault and says what happens to the connection next.
    private func respond(to request: Request, on connection: Connection, connectionNumber: Int) -> After {
        let send = connection.transmit
        switch request.fault {
        case "hang-head":
            return .hang
        case "head-hang":
            send(Self.ok + "Content-Length: 100\r\n\r\n")
            return .hang
        case "slow-drip":
            // The head a byte at a time, then the body a byte a second; each byte is a sign of
            // life, so the upstream timeout (an idle timer) never fires.
            for byte in (Self.ok + "Content-Length: 4\r\n\r\n").utf8 {
                guard send(String(UnicodeScalar(byte))) else { return .close }
                Thread.sleep(forTimeInterval: 0.01)
            }
            for byte in "drip".utf8 {
                Thread.sleep(forTimeInterval: 1)
                guard send(String(UnicodeScalar(byte))) else { return .close }
            }
            return .keepServing
        case "short-body":
            send(Self.ok + "Content-Length: 100\r\n\r\n0123456789")
            return .close
        case "short-chunked":
            send(Self.ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            return .close
        case "garbage-status":
            send("HTTP/1.1 OK 200\r\nContent-Length: 2\r\n\r\nok")
            return .keepServing
        case "header-nul":
            send(Self.ok + "X-Broken: a\u{0}b\r\nContent-Length: 2\r\n\r\nok")
            return .keepServing
        case "header-bare-cr":
            send(Self.ok + "X-Broken: a\rb\r\nContent-Length: 2\r\n\r\nok")
            return .keepServing
        case "header-obs-fold":
            send(Self.ok + "X-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nok")
            return .keepServing
        case "cl-conflict":
            send(Self.ok + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nok")
            return .keepServing
        case "cl-and-chunked":
            send(Self.ok + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            return .keepServing
        case "chunk-nonhex":
            send(Self.ok + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
            return .keepServing
        case "chunk-overflow":
            send(Self.ok + "Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nhello\r\n0\r\n\r\n")
            return .keepServing
        case "chunk-no-crlf":
            send(Self.ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n")
            return .keepServing
        case "chunk-nonhex-late":
            send(Self.ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            _ = gate.wait(timeout: .now() + 20)
            send("zz\r\nworld\r\n0\r\n\r\n")
            return .keepServing
        case "huge-head":
            var head = Self.ok
            let line = "X-Filler: " + String(repeating: "f", count: 1000) + "\r\n"
            for _ in 0..<(Self.hugeHeadBytes / line.utf8.count) { head += line }
            // The proxy stops reading long before the end; a failed send ends the answer.
            send(head + "Content-Length: 2\r\n\r\nok")
            return .keepServing
        case "interim-100":
            send("HTTP/1.1 100 Continue\r\n\r\n")
            send(Self.ok + "Content-Length: 5\r\n\r\nfinal")
            return .keepServing
        case "interim-103":
            send("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
            send(Self.ok + "Content-Length: 5\r\n\r\nfinal")
            return .keepServing
        case "switching-101":
            send("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{1}\u{2}binary")
            return .keepServing
        case "head-body":
            // A body after a HEAD answer (or after a 204 or 304 below): one write, so that it
            // arrives with the head.
            send(Self.ok + "Content-Length: 5\r\n\r\nhello")
            return .keepServing
        case "no-content-body":
            send("HTTP/1.1 204 No Content\r\nX-Fault: 204\r\n\r\nhello")
            return .keepServing
        case "not-modified-body":
            send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\nhello")
            return .keepServing
        case "early-413", "early-413-late":
            // Answers as soon as the head is in (or, `-late`, once the test says so, with the
            // body piling up unread meanwhile), reads none of the body, and keeps the connection
            // open without reading (an upstream that has moved on).
            if request.fault.hasSuffix("-late") { _ = gate.wait(timeout: .now() + 20) }
            send(
                Self.ok.replacingOccurrences(of: "200 OK", with: "413 Payload Too Large") + "Connection: close\r\nContent-Length: 9\r\n\r\ntoo large"
            )
            return .holdWithoutReading
        case "early-400":
            // Answers as soon as the head is in, then closes in stages, reading and discarding.
            send(Self.ok.replacingOccurrences(of: "200 OK", with: "400 Bad Request") + "Connection: close\r\nContent-Length: 11\r\n\r\nbad request")
            return .stagedClose
        default:
            // `ok`, `stale-close`, `stale-reset`, `idle-close` and anything else: a healthy
            // keep-alive answer.
            let body = "ok \(connectionNumber)"
            send(Self.ok + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")
            return .keepServing
        }
    }

    /// One accepted socket: buffered reads of heads and bodies, and writes that never raise
    /// SIGPIPE.
    private final class Connection {
        package let descriptor: Int32
        private var buffer: [UInt8] = []

        package init(descriptor: Int32) {
            self.descriptor = descriptor
        }

        /// Reads more bytes into the buffer; false at the end of the stream or on an error.
        private func fill() -> Bool {
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
                if count > 0 {
                    buffer += chunk[0..<count]
                    return true
                }
                if count < 0, errno == EINTR { continue }
                return false
            }
        }

        /// Reads the next request head; nil when the connection ended first.
        package func readHead() -> Request? {
            let end: [UInt8] = [13, 10, 13, 10]
            while true {
                if let range = buffer.firstRange(of: end) {
                    let text = String(decoding: buffer[..<range.lowerBound], as: UTF8.self)
                    buffer.removeSubrange(..<range.upperBound)
                    var lines = text.components(separatedBy: "\r\n")
                    let requestLine = lines.removeFirst().split(separator: " ")
                    guard requestLine.count >= 2 else { return nil }
                    var length = 0
                    for line in lines {
                        let parts = line.split(separator: ":", maxSplits: 1)
                        if parts.count == 2, parts[0].lowercased() == "content-length" {
                            length = Int(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0
                        }
                    }
                    let target = String(requestLine[1])
                    let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
                    let segments = path.split(separator: "/")
                    let fault = segments.count >= 2 ? String(segments[1]) : "ok"
                    return Request(method: String(requestLine[0]), target: target, fault: fault, contentLength: length)
                }
                guard fill() else { return nil }
            }
        }

        /// Reads and drops a body of `length` bytes; false when the connection ended first.
        package func readBody(_ length: Int) -> Bool {
            var remaining = length
            while remaining > 0 {
                if buffer.isEmpty, !fill() { return false }
                let taken = min(remaining, buffer.count)
                buffer.removeFirst(taken)
                remaining -= taken
            }
            return true
        }

        /// Reads and drops everything until the other side closes.
        package func discardUntilClosed() {
            while fill() { buffer.removeAll(keepingCapacity: true) }
        }

        /// Writes all of `text`; false once the other side is gone.
        @discardableResult
        package func transmit(_ text: String) -> Bool {
            let bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes {
                    send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
                }
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
