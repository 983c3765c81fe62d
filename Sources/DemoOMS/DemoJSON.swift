import Foundation
import Hummingbird

/// JSON responses for the demo servers, with sorted keys so that output is stable.
enum DemoJSON {
    static func response(_ object: Any, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return response(data: data, status: status)
    }

    static func response(data: Data, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data))
        )
    }

    static func encode(_ object: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    /// Reads a request body (at most 1 MiB) that must be a JSON object. Returned as `Data`
    /// (Sendable) for the database closure to decode with ``object(_:)``.
    static func body(_ request: Request) async throws -> Data {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let data = Data(buffer: buffer)
        guard (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
            throw HTTPError(.badRequest, message: "the body must be a JSON object")
        }
        return data
    }

    /// Decodes a body already checked by ``body(_:)``.
    static func object(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }
}

/// What a demo request does when it can't be served.
struct DemoFailure: Error {
    var status: HTTPResponse.Status
    var code: String
    var message: String
}
