import NIOCore
import NIOEmbedded
import NIOHTTP1
import StranglerTestSupport

@testable import StranglerProxy

/// One message as a parser read it, in terms both parsers can state.
struct ReadMessage: Equatable {
    /// A header or trailer line's name and value.
    struct Field: Equatable, CustomStringConvertible {
        var name: String
        var value: String
        var description: String { "\(name): \(value)".debugDescription }
    }

    /// Requests: method and target; responses: status.
    var method = ""
    var target = ""
    var status = 0
    var version = ""
    var headers: [Field] = []
    var body: [UInt8] = []
    var trailers: [Field] = []
    var ended = false
    var keepAlive = true

    /// The head as the proxy would act on it, for comparison.
    var head: String {
        "\(method) \(target) \(status) HTTP/\(version) \(headers)"
    }
}

/// What one parser made of a whole input, through the connection's close.
struct ReadOutcome {
    enum Ending: Equatable {
        /// Every byte was read as messages, and the close came between two of them.
        case clean
        /// The parser stopped reading on its own after its last message: ours after a
        /// message that does not keep the connection open (the proxy reads nothing after it),
        /// llhttp after an upgrade request.
        case stopped
        /// The parser refused the input, for this reason.
        case refused(String)
    }

    var messages: [ReadMessage] = []
    var ending = Ending.clean

    var refusal: String? {
        if case .refused(let reason) = ending { return reason }
        return nil
    }
}

/// A generated input for both parsers: the bytes, where they are cut into reads, and for
/// responses the method of each request they answer.
struct CrossCheckInput: Sendable, CustomStringConvertible {
    var bytes: [UInt8]
    /// Offsets where one read ends and the next begins (ascending, inside the bytes).
    var cuts: [Int] = []
    var methods: [HTTPMethod] = []

    /// The reads, in order.
    var pieces: [ArraySlice<UInt8>] {
        var pieces: [ArraySlice<UInt8>] = []
        var start = 0
        for cut in cuts + [bytes.count] where cut > start {
            pieces.append(bytes[start..<cut])
            start = cut
        }
        return pieces
    }

    var description: String {
        let methods = self.methods.isEmpty ? "" : " answering \(self.methods.map(\.rawValue))"
        return "\(Self.escaped(bytes)) cut at \(cuts)\(methods)"
    }

    /// The bytes as a Swift string literal's contents, so a case can be pasted into a test.
    static func escaped(_ bytes: [UInt8]) -> String {
        var text = "\""
        for byte in bytes {
            switch byte {
            case 0x0D: text += "\\r"
            case 0x0A: text += "\\n"
            case 0x09: text += "\\t"
            case 0x22: text += "\\\""
            case 0x5C: text += "\\\\"
            case 0x20..<0x7F: text.unicodeScalars.append(Unicode.Scalar(byte))
            default: text += "\\u{\(String(byte, radix: 16, uppercase: true))}"
            }
        }
        return text + "\""
    }
}

/// Reads inputs with the proxy's own parsers, the way the proxy reads a connection.
enum OurReader {
    static let maxHeadBytes = 64 * 1024

    /// A client connection: requests one after another until one ends the connection; then
    /// the close.
    static func requests(_ input: CrossCheckInput) -> ReadOutcome {
        var parser = ClientRequestParser(maxHeadBytes: maxHeadBytes)
        var outcome = ReadOutcome()
        do {
            for piece in input.pieces {
                var buffer = ByteBuffer(bytes: piece)
                while true {
                    if parser.isDone {
                        guard buffer.readableBytes > 0 else { break }
                        // ProxyHandler reads nothing after a request that closes the connection.
                        if let last = outcome.messages.last, !last.keepAlive {
                            outcome.ending = .stopped
                            return outcome
                        }
                        parser.expectMessage(())
                    }
                    guard let event = try parser.next(&buffer) else { break }
                    switch event {
                    case .head(let head):
                        outcome.messages.append(
                            ReadMessage(
                                method: head.method.rawValue,
                                target: head.uri,
                                version: "1.\(head.version.minor)",
                                headers: head.headers.map { .init(name: $0.0, value: $0.1) },
                                keepAlive: head.isKeepAlive
                            )
                        )
                    case .body(let part):
                        outcome.messages[outcome.messages.count - 1].body += part.readableBytesView
                    case .end(let trailers):
                        outcome.messages[outcome.messages.count - 1].trailers = try fields(trailers)
                        outcome.messages[outcome.messages.count - 1].ended = true
                    }
                }
            }
            if parser.hasStartedMessage {
                outcome.ending = .refused("the connection closed in the middle of a request")
            }
        } catch {
            outcome.ending = .refused("\(error)")
        }
        return outcome
    }

    /// An upstream connection: one response per request method, each expected once the one
    /// before it ended (``UpstreamConnection`` sends the next request then); then the close.
    static func responses(_ input: CrossCheckInput) -> ReadOutcome {
        var parser = UpstreamResponseParser()
        var outcome = ReadOutcome()
        var answered = 0
        parser.expectResponse(bodyless: input.methods[0] == .HEAD)
        do {
            for piece in input.pieces {
                var buffer = ByteBuffer(bytes: piece)
                while true {
                    if parser.isDone {
                        guard buffer.readableBytes > 0 else { break }
                        // After a response that closes the connection, or beyond the responses
                        // asked for, UpstreamConnection closes the connection rather than read on.
                        guard outcome.messages.last?.keepAlive != false, answered < input.methods.count else {
                            outcome.ending = .stopped
                            return outcome
                        }
                        parser.expectResponse(bodyless: input.methods[answered] == .HEAD)
                    }
                    guard let event = try parser.next(&buffer) else { break }
                    handle(event, into: &outcome, answered: &answered)
                }
            }
            if let event = try parser.connectionClosed() {
                handle(event, into: &outcome, answered: &answered)
            }
        } catch {
            outcome.ending = .refused("\(error)")
        }
        return outcome
    }

    private static func handle(_ event: UpstreamResponseParser.Event, into outcome: inout ReadOutcome, answered: inout Int) {
        switch event {
        case .head(let head):
            outcome.messages.append(
                ReadMessage(
                    status: head.statusCode,
                    version: "1.\(head.version.minor)",
                    headers: head.headers.map { .init(name: $0.0, value: $0.1) },
                    keepAlive: head.isKeepAlive
                )
            )
        case .body(let part):
            outcome.messages[outcome.messages.count - 1].body += part.readableBytesView
        case .end(let trailers):
            answered += 1
            outcome.messages[outcome.messages.count - 1].trailers = (try? fields(trailers)) ?? []
            outcome.messages[outcome.messages.count - 1].ended = true
        }
    }

    /// A chunked body's trailer lines as fields (the parser hands them on as bytes).
    private static func fields(_ lines: ByteBuffer?) throws -> [ReadMessage.Field] {
        guard var lines else { return [] }
        lines.writeStaticString("\r\n")
        return try lines.withUnsafeReadableBytes { raw in
            var fields: [ReadMessage.Field] = []
            var offset = 0
            while offset < raw.count - 2 {
                let field = try HTTPHeadSyntax.parseField(raw, from: &offset)
                fields.append(
                    .init(
                        name: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.name]), as: UTF8.self),
                        value: String(decoding: UnsafeRawBufferPointer(rebasing: raw[field.value]), as: UTF8.self)
                    )
                )
            }
            return fields
        }
    }
}

/// Reads inputs with NIOHTTP1's decoders (llhttp), in an embedded channel.
enum LLHTTPReader {
    static func requests(_ input: CrossCheckInput) -> ReadOutcome {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try! channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
        return read(input, on: channel) { channel, outcome in
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) {
                switch part {
                case .head(let head):
                    outcome.messages.append(
                        ReadMessage(
                            method: head.method.rawValue,
                            target: head.uri,
                            version: "\(head.version.major).\(head.version.minor)",
                            headers: head.headers.map { .init(name: $0.name, value: $0.value) },
                            keepAlive: head.isKeepAlive
                        )
                    )
                case .body(let part):
                    outcome.messages[outcome.messages.count - 1].body += part.readableBytesView
                case .end(let trailers):
                    outcome.messages[outcome.messages.count - 1].trailers = trailers?.map { .init(name: $0.name, value: $0.value) } ?? []
                    outcome.messages[outcome.messages.count - 1].ended = true
                }
            }
        }
    }

    /// The response decoder learns each request's method from the request heads written
    /// through its handler, as in a client pipeline.
    static func responses(_ input: CrossCheckInput) -> ReadOutcome {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish() }
        try! channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop))
        )
        for method in input.methods {
            try! channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        }
        return read(input, on: channel) { channel, outcome in
            while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
                switch part {
                case .head(let head):
                    outcome.messages.append(
                        ReadMessage(
                            status: Int(head.status.code),
                            version: "\(head.version.major).\(head.version.minor)",
                            headers: head.headers.map { .init(name: $0.name, value: $0.value) },
                            keepAlive: head.isKeepAlive
                        )
                    )
                case .body(let part):
                    outcome.messages[outcome.messages.count - 1].body += part.readableBytesView
                case .end(let trailers):
                    outcome.messages[outcome.messages.count - 1].trailers = trailers?.map { .init(name: $0.name, value: $0.value) } ?? []
                    outcome.messages[outcome.messages.count - 1].ended = true
                }
            }
        }
    }

    /// Feeds the reads, then the close, collecting parts as they come; the first error ends it.
    private static func read(
        _ input: CrossCheckInput,
        on channel: EmbeddedChannel,
        collect: (EmbeddedChannel, inout ReadOutcome) throws -> Void
    ) -> ReadOutcome {
        var outcome = ReadOutcome()
        do {
            for piece in input.pieces {
                do {
                    try channel.writeInbound(ByteBuffer(bytes: piece))
                } catch {
                    try collect(channel, &outcome)
                    throw error
                }
                try collect(channel, &outcome)
            }
            channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
            do {
                try channel.throwIfErrorCaught()
            } catch {
                try collect(channel, &outcome)
                throw error
            }
            try collect(channel, &outcome)
        } catch {
            outcome.ending = .refused("\(error)")
        }
        return outcome
    }

    /// Whether llhttp stops reading HTTP after this request: it asks for an upgrade
    /// (`Upgrade` and a `Connection` naming it), and what follows belongs to the new protocol.
    static func isUpgrade(_ message: ReadMessage) -> Bool {
        let connection = message.headers.filter { $0.name.lowercased() == "connection" }.flatMap {
            $0.value.lowercased().split(separator: ",").map { $0.trimmingCharacters(in: " \t") }
        }
        return message.method == "CONNECT"
            || (connection.contains("upgrade") && message.headers.contains { $0.name.lowercased() == "upgrade" })
    }
}

/// What the comparison of the two readings says.
enum CrossCheckVerdict: Equatable {
    /// Same messages, same boundaries, and both accepted them all.
    case agree
    /// Same messages up to where both refused.
    case bothRefused
    /// Ours refused where llhttp accepted; the class is our reason, with numbers taken out.
    case oursStricter(String)
    /// A difference that is not a disagreement on what the proxy acts on (the class says why).
    case benign(String)
    /// The proxy would act on something llhttp reads differently or refuses: a bug in ours.
    case violation(String)
}

extension CrossCheckVerdict {
    var isViolation: Bool {
        if case .violation = self { return true }
        return false
    }
}

/// Compares two readings under the cross-check's rule: wherever ours accepts, llhttp must
/// accept the same messages, with the same boundaries, heads and bodies.
enum CrossCheck {
    static func compare(ours: ReadOutcome, llhttp: ReadOutcome) -> CrossCheckVerdict {
        let shared = min(ours.messages.count, llhttp.messages.count)
        for index in 0..<shared {
            let mine = ours.messages[index]
            let theirs = llhttp.messages[index]
            if !sameHead(mine, theirs) {
                return .violation("message \(index + 1)'s head differs: ours \(mine.head), llhttp \(theirs.head)")
            }
            switch (mine.ended, theirs.ended) {
            case (true, true):
                if mine.body != theirs.body {
                    return .violation("message \(index + 1)'s body differs: ours \(mine.body.count) bytes, llhttp \(theirs.body.count)")
                }
                if mine.trailers != theirs.trailers.map(trimmed) {
                    return .violation("message \(index + 1)'s trailers differ: ours \(mine.trailers), llhttp \(theirs.trailers)")
                }
            case (true, false):
                return .violation("ours accepted message \(index + 1), llhttp did not finish it: \(llhttp.refusal ?? "no error")")
            case (false, true):
                return stricter(ours, otherwise: "llhttp finished message \(index + 1), ours did not")
            case (false, false):
                // Both stopped inside this message: only a refusal can have ended it.
                if llhttp.refusal != nil, ours.refusal != nil { return .bothRefused }
                return stricter(ours, otherwise: "both stopped inside message \(index + 1), ours without refusing it")
            }
        }
        // llhttp reads no HTTP after an upgrade request; ours reads on, as the proxy drops
        // Upgrade and the upstream never switches. What ours makes of the rest is its own.
        let llhttpUpgraded = llhttp.refusal == nil && llhttp.messages.last.map { $0.ended && LLHTTPReader.isUpgrade($0) } == true
        if ours.messages.count > shared {
            if llhttpUpgraded { return .benign(upgradeClass) }
            return .violation(
                "ours read \(ours.messages.count) messages, llhttp \(shared): \(llhttp.refusal ?? "llhttp saw no more")"
            )
        }
        if llhttp.messages.count > shared {
            if ours.ending == .stopped {
                return .oursStricter("ours closes the connection after a message llhttp keeps it open for")
            }
            return stricter(ours, otherwise: "llhttp read \(llhttp.messages.count) messages, ours \(shared)")
        }
        // The same messages; now how each reading ended.
        switch (ours.ending, llhttp.ending) {
        case (.refused, .refused):
            return .bothRefused
        case (.refused, _):
            return llhttpUpgraded ? .benign(upgradeClass) : stricter(ours, otherwise: "")
        case (.stopped, .refused(let reason)):
            // Ours read no further (the message closed the connection, or no request was
            // waiting for an answer); llhttp refused what followed.
            return .benign("ours reads nothing after its last message; llhttp refuses what follows (\(reason))")
        case (.clean, .refused(let reason)):
            return .violation("llhttp refused after the last message, ours did not: \(reason)")
        default:
            return .agree
        }
    }

    static let upgradeClass = "llhttp reads no HTTP after an Upgrade request; ours reads on (it drops Upgrade, so the upstream never switches)"

    /// Ours refused, so it is the stricter one; or, if it did not, the difference is a violation.
    private static func stricter(_ ours: ReadOutcome, otherwise violation: String) -> CrossCheckVerdict {
        guard let reason = ours.refusal else { return .violation(violation) }
        return .oursStricter(String(reason.map { $0.isNumber ? "#" : $0 }))
    }

    private static func sameHead(_ mine: ReadMessage, _ theirs: ReadMessage) -> Bool {
        // NIO names llhttp's M-SEARCH `.MSEARCH`, whose raw value has no hyphen.
        let theirMethod = theirs.method == "MSEARCH" ? "M-SEARCH" : theirs.method
        return mine.method == theirMethod && mine.target == theirs.target && mine.status == theirs.status && mine.version == theirs.version
            && mine.headers == theirs.headers.map(trimmed)
    }

    /// llhttp hands on a value with any whitespace after it; RFC 9110 §5.5 says that is not
    /// part of the value, and ours leaves it out.
    private static func trimmed(_ field: ReadMessage.Field) -> ReadMessage.Field {
        .init(name: field.name, value: String(field.value.trimmingCharacters(in: " \t")))
    }
}
