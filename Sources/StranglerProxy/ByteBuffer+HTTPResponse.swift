import NIOCore
import NIOHTTP1

/// Response serialisation for the client side, which has no NIO response encoder: the proxy
/// writes response bytes itself, so a forwarded head is copied from the upstream's bytes and
/// only the proxy's own answers (errors, `100 Continue`) go through `HTTPResponseHead`.
extension ByteBuffer {
    /// Writes a status line and header lines, then the blank line.
    mutating func writeHTTPResponseHead(_ head: HTTPResponseHead) {
        writeStaticString(head.version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
        writeStatusCode(Int(head.status.code))
        writeStaticString(" ")
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

    /// Writes a three-digit status code.
    mutating func writeStatusCode(_ code: Int) {
        writeInteger(UInt8(ascii: "0") + UInt8(code / 100 % 10))
        writeInteger(UInt8(ascii: "0") + UInt8(code / 10 % 10))
        writeInteger(UInt8(ascii: "0") + UInt8(code % 10))
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
