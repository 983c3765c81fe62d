import NIOCore

/// The last exchange's head buffer, which the next exchange writes its head into.
///
/// Once the socket has taken its bytes nothing else holds the buffer, and `clear` reuses it: a
/// fresh buffer costs two allocations (its storage object and its bytes). If a head is still
/// queued (a slow client), `clear` allocates, as a fresh buffer would.
struct SpareHeadBuffer {
    /// The largest buffer kept as a spare. Heads are usually well under 1 KB (4 KB more when
    /// body bytes join the response's); a rare large head should not stay with an idle
    /// keep-alive connection for the rest of its life.
    static let capacityLimit = 16 * 1024

    private var spare = ByteBuffer()

    /// An emptied buffer of at least `capacity` bytes, made from the spare, which is left
    /// empty: the buffer is then uniquely held, and reused without allocating when nothing
    /// else holds it.
    mutating func take(capacity: Int) -> ByteBuffer {
        var buffer = ByteBuffer()
        swap(&buffer, &spare)
        buffer.clear(minimumCapacity: capacity)
        return buffer
    }

    /// Keeps `buffer`, a head just written, as the next head's spare, unless it has grown past
    /// the limit.
    mutating func keep(_ buffer: ByteBuffer) {
        if buffer.capacity <= Self.capacityLimit { spare = buffer }
    }
}
