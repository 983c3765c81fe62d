import NIOCore
import NIOHTTP1

/// HTTP/1.1 framing written by the proxy itself, which has no NIO encoders: a forwarded head
/// is copied from the upstream's bytes and only the proxy's own answers (errors,
/// `100 Continue`) go through `HTTPResponseHead`; chunked bodies are framed here both ways.
extension ByteBuffer {
    /// Writes a status line and header lines, then the blank line.
    mutating func writeHTTPResponseHead(_ head: HTTPResponseHead) {
        writeStatusLineStart(version: head.version, code: Int(head.status.code))
        writeString(head.status.reasonPhrase)
        writeStaticString("\r\n")
        for (name, value) in head.headers {
            writeString(name)
            writeStaticString(": ")
            writeString(value)
            writeStaticString("\r\n")
        }
        writeStaticString("\r\n")
    }

    /// Writes a status line up to its reason phrase: `HTTP/1.1 200 `.
    mutating func writeStatusLineStart(version: HTTPVersion, code: Int) {
        // One write of 13 bytes: each separate write checks capacity and uniqueness again.
        writeWithUnsafeMutableBytes(minimumWritableBytes: 13) { bytes in
            bytes[0] = UInt8(ascii: "H")
            bytes[1] = UInt8(ascii: "T")
            bytes[2] = UInt8(ascii: "T")
            bytes[3] = UInt8(ascii: "P")
            bytes[4] = UInt8(ascii: "/")
            bytes[5] = UInt8(ascii: "1")
            bytes[6] = UInt8(ascii: ".")
            bytes[7] = version.minor == 0 ? UInt8(ascii: "0") : UInt8(ascii: "1")
            bytes[8] = UInt8(ascii: " ")
            bytes[9] = UInt8(ascii: "0") + UInt8(code / 100 % 10)
            bytes[10] = UInt8(ascii: "0") + UInt8(code / 10 % 10)
            bytes[11] = UInt8(ascii: "0") + UInt8(code % 10)
            bytes[12] = UInt8(ascii: " ")
            return 13
        }
    }

    /// Writes `size` in hexadecimal and CRLF: a chunk's size line.
    mutating func writeChunkSizeLine(_ size: Int) {
        var digits = 1
        while size >> (4 * digits) != 0 { digits += 1 }
        for position in stride(from: digits - 1, through: 0, by: -1) {
            let digit = UInt8((size >> (4 * position)) & 0xF)
            writeInteger(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
        }
        writeStaticString("\r\n")
    }
}

extension ChannelHandlerContext {
    /// A chunk's closing CRLF, and the last chunk of a body without trailers.
    private static let chunkEnd = ByteBuffer(staticString: "\r\n")
    static let lastChunk = ByteBuffer(staticString: "0\r\n\r\n")

    /// Writes `body` as one chunk of a chunked message (size line, data, CRLF) without copying
    /// the data. An empty buffer is skipped: a zero-size chunk would end the message.
    func writeChunk(_ body: ByteBuffer) {
        guard body.readableBytes > 0 else { return }
        var sizeLine = channel.allocator.buffer(capacity: 18)
        sizeLine.writeChunkSizeLine(body.readableBytes)
        write(NIOAny(sizeLine), promise: nil)
        write(NIOAny(body), promise: nil)
        write(NIOAny(Self.chunkEnd), promise: nil)
    }
}
