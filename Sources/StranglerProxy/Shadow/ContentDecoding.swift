import CompressNIO
import NIOCore
import StranglerCore

/// Undoes `Content-Encoding: gzip` / `deflate` on a captured body before comparison, off the
/// event loop. Output is capped, so a small hostile body can't expand without bound.
enum ContentDecoding {
    /// The largest decoded body compared; beyond it the comparison is uncomparable.
    static let maxDecodedBytes = 8 * 1024 * 1024

    /// The response with its body decoded and the encoding headers removed, or why that failed.
    static func decode(_ response: CapturedResponse, side: String) -> Result<CapturedResponse, Failure> {
        guard let encoding = response.header("content-encoding")?.lowercased().trimmingCharacters(in: .whitespaces),
            encoding != "identity", !encoding.isEmpty
        else { return .success(response) }
        let algorithms: [CompressionAlgorithm]
        switch encoding {
        case "gzip", "x-gzip": algorithms = [.gzip()]
        // HTTP's "deflate" is the zlib format, but some servers send raw deflate.
        case "deflate": algorithms = [.zlib(), .deflate()]
        default: return .failure(Failure(reason: "the \(side) body is \(encoding)-encoded, which is not decoded (gzip and deflate are)"))
        }
        var lastError = ""
        for algorithm in algorithms {
            var input = ByteBuffer(bytes: response.body)
            var output = ByteBufferAllocator().buffer(capacity: min(maxDecodedBytes, max(4096, response.body.count * 8)))
            do {
                try decompress(&input, into: &output, with: algorithm)
                var decoded = response
                decoded.body = Array(output.readableBytesView)
                decoded.headers.removeAll {
                    let name = $0.name.lowercased()
                    return name == "content-encoding" || name == "content-length"
                }
                return .success(decoded)
            } catch let error as CompressNIOError where error == .bufferOverflow {
                return .failure(Failure(reason: "the \(side) body decodes to more than \(maxDecodedBytes) bytes; not compared"))
            } catch {
                lastError = "\(error)"
            }
        }
        return .failure(Failure(reason: "the \(side) body is not valid \(encoding) (\(lastError))"))
    }

    /// Decompresses, growing the output up to the cap.
    private static func decompress(_ input: inout ByteBuffer, into output: inout ByteBuffer, with algorithm: CompressionAlgorithm) throws {
        let start = input.readerIndex
        while true {
            do {
                try input.decompress(to: &output, with: algorithm)
                return
            } catch let error as CompressNIOError where error == .bufferOverflow && output.capacity < maxDecodedBytes {
                input.moveReaderIndex(to: start)
                output = ByteBufferAllocator().buffer(capacity: min(maxDecodedBytes, output.capacity * 4))
            }
        }
    }

    struct Failure: Error {
        var reason: String
    }
}
