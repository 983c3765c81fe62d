import NIOCore

/// The client side of one connection: whether its bytes are read and parsed, held back,
/// dropped, or no longer looked at, and how the connection ends.
///
/// A value type with no I/O, the client-side counterpart of ``ExchangeStateMachine``:
/// ``ProxyHandler`` feeds it events (a read was asked for, bytes arrived, the exchange
/// finished, the server quiesces, the channel closed) and carries out what each returns. The
/// rules that used to live in a handful of connection flags meet here, where the tests drive
/// them without sockets:
///
/// - Reads from the client are paused while the upstream can't take more (or has no connection
///   yet); a read asked for meanwhile is kept and issued on resume.
/// - Bytes of a pipelined request wait unparsed while the exchange before it runs, and reads
///   stay paused until they have had their turn, which bounds what a pipelining client makes
///   the proxy hold to one read cycle.
/// - Once the connection closes, or its bytes stop making sense, nothing more is parsed.
/// - A staged close (RFC 9112 §9.6) reads what the client still sends only to drop it, up to
///   a byte budget.
///
/// Hot-path cost: a few words (one optional buffer, a counter, some flags), mutated in place;
/// nothing here allocates.
struct ClientConnectionStateMachine {
    /// What happens to the client's bytes.
    enum Input {
        /// Parsed as they arrive.
        case open
        /// Bytes of a request that would start while the current exchange runs: they wait
        /// unparsed until it has finished.
        case holding(ByteBuffer)
        /// Nothing more is parsed: the connection is closing, or its bytes stopped making sense.
        case closed
        /// A staged close: what arrives is read and dropped; `bytes` counts it against the budget.
        case discarding(bytes: Int)
    }

    /// Whether reads from the client are asked for.
    enum Reads: Equatable {
        /// Reads pass through.
        case flowing
        /// Reads are held back; `pending` says a read was asked for meanwhile.
        case paused(pending: Bool)
    }

    /// What to do with bytes that arrived from the client.
    enum ReadAction: Equatable {
        /// Parse them (pipelined bytes that waited have been put in front of them).
        case parse
        /// A staged close dropped them within its budget: the linger's idle bound moves.
        case discarded
        /// A staged close dropped them and the budget is spent: close now.
        case closeDiscarding
    }

    /// What a quiescing server does to this connection.
    enum QuiesceAction: Equatable {
        /// No exchange runs: close now.
        case close
        /// Finish the running exchange, then close.
        case closeAfterExchange
    }

    /// How the connection closes after an exchange that said it would.
    enum CloseAction: Equatable {
        /// The client may still be sending: write the rest, shut the write side, then read and
        /// drop until it closes (a close with unread bytes would reset its answer away).
        case staged
        /// Close at once.
        case immediate
    }

    /// What resuming reads does.
    enum ResumeAction: Equatable {
        /// Nothing changed (reads were not paused, or pipelined bytes still wait).
        case none
        /// Reads flow again; `read` says a read asked for while paused is issued now.
        case resumed(read: Bool)
    }

    private(set) var input = Input.open
    private(set) var reads = Reads.flowing
    /// The parser refused the client's bytes: more of them may still be on the way, so the
    /// close after the answer is staged.
    private(set) var rejected = false
    /// Pipelined bytes are being parsed after their exchange's predecessor finished: a finish
    /// during their delivery must not start another one.
    private(set) var delivering = false
    /// The server is shutting down: finish the current exchange, then close.
    private(set) var quiescing = false
    /// The connection holds a place in the server's connection count, to be given back once.
    private(set) var holdsPlace: Bool
    /// The most bytes a staged close drops before it closes anyway.
    let discardBudget: Int

    /// - Parameters:
    ///   - holdsPlace: the connection took a place in the server's count (``ClientConnectionCount``).
    ///   - discardBudget: the most bytes a staged close reads and drops (`lingerMaxBytes`).
    init(holdsPlace: Bool, discardBudget: Int) {
        self.holdsPlace = holdsPlace
        self.discardBudget = discardBudget
    }

    // MARK: - Views

    /// Whether the client's bytes are still parsed as requests.
    var parsesInput: Bool {
        switch input {
        case .open, .holding: true
        case .closed, .discarding: false
        }
    }

    /// Pipelined bytes wait for the current exchange to finish.
    var holdsPipelined: Bool {
        if case .holding = input { return true }
        return false
    }

    /// Reads from the client are held back.
    var readsPaused: Bool { reads != .flowing }

    // MARK: - Reading

    /// The channel asks for a read. Returns whether to pass it on now; while paused it is kept
    /// for the resume.
    mutating func readRequested() -> Bool {
        guard case .paused = reads else { return true }
        reads = .paused(pending: true)
        return false
    }

    /// Bytes arrived from the client. Pipelined bytes that waited are put in front of
    /// `buffer`, so the caller parses them in order.
    mutating func bytesArrived(_ buffer: inout ByteBuffer) -> ReadAction {
        switch input {
        case .discarding(let bytes):
            let total = bytes + buffer.readableBytes
            input = .discarding(bytes: total)
            return total > discardBudget ? .closeDiscarding : .discarded
        case .holding(var waiting):
            // Let go of the held copy first, so that the buffer is uniquely held when it grows.
            input = .open
            waiting.writeBuffer(&buffer)
            buffer = waiting
            return .parse
        case .open, .closed:
            return .parse
        }
    }

    /// Holds `buffer`, the start of a request that arrived while the exchange before it still
    /// runs, and pauses reads until it has had its turn. Returns whether reads were paused
    /// just now (the body bound stops counting time the proxy itself holds the client back).
    /// Once nothing is parsed any more, the bytes are dropped instead.
    mutating func holdPipelined(_ buffer: ByteBuffer) -> Bool {
        guard parsesInput else { return false }
        input = .holding(buffer)
        return pauseReads()
    }

    /// The exchange before the held bytes finished: returns them to be parsed, unless a
    /// delivery is already under way (a finish during it comes back here) or nothing waits.
    /// Every call that returns bytes is paired with ``deliveryEnded()``.
    mutating func startDelivering() -> ByteBuffer? {
        guard !delivering, case .holding(let buffer) = input else { return nil }
        input = .open
        delivering = true
        return buffer
    }

    /// The held bytes have been parsed (whatever of them did not start yet is held again).
    mutating func deliveryEnded() {
        delivering = false
    }

    /// Holds back reads from the client. Returns whether they were flowing until now.
    mutating func pauseReads() -> Bool {
        guard reads == .flowing else { return false }
        reads = .paused(pending: false)
        return true
    }

    /// Lets reads from the client flow again, unless pipelined bytes wait: no more is read
    /// until they have had their turn.
    mutating func resumeReads() -> ResumeAction {
        guard case .paused(let pending) = reads, !holdsPipelined else { return .none }
        reads = .flowing
        return .resumed(read: pending)
    }

    // MARK: - The connection's end

    /// The parser refused the client's bytes: nothing after them is parsed, since where the
    /// request ends is unknown, and the close after the answer is staged.
    mutating func inputRejected() {
        rejected = true
        closeInput()
    }

    /// Nothing more from the client is parsed (the connection is closing, or the proxy answers
    /// a request it will not read to its end). A staged close keeps dropping what arrives.
    mutating func closeInput() {
        switch input {
        case .open, .holding: input = .closed
        case .closed, .discarding: break
        }
    }

    /// The server is shutting down.
    mutating func quiesce(exchangeRunning: Bool) -> QuiesceAction {
        quiescing = true
        return exchangeRunning ? .closeAfterExchange : .close
    }

    /// An exchange that said `Connection: close` finished. The close is staged when the client
    /// may still be sending (pipelined requests after this one, or the rest of a request the
    /// parser refused), unless the server is quiescing.
    func closeAfterExchange() -> CloseAction {
        !quiescing && (holdsPipelined || rejected) ? .staged : .immediate
    }

    /// A staged close begins: nothing is parsed, and what arrives from now on is dropped.
    /// Reads resume separately (``resumeReadsToDiscard()``), once the answer's last bytes are
    /// handed to the channel.
    mutating func stagedCloseStarted() {
        input = .discarding(bytes: 0)
    }

    /// A staged close keeps reading, to discard: a full receive buffer would stall the client's
    /// send. Returns whether a read asked for while paused is issued now. Nothing changes
    /// outside a staged close.
    mutating func resumeReadsToDiscard() -> Bool {
        guard case .discarding = input else { return false }
        let pending = reads == .paused(pending: true)
        reads = .flowing
        return pending
    }

    /// The channel closed: nothing more is parsed. Returns whether the connection's place in
    /// the server's count is given back now.
    mutating func channelClosed() -> Bool {
        input = .closed
        return releasePlace()
    }

    /// Gives the connection's place in the server's count back. Returns true only the first time.
    mutating func releasePlace() -> Bool {
        guard holdsPlace else { return false }
        holdsPlace = false
        return true
    }
}
