import Foundation
import StranglerCore
import Testing

@Suite("Route table differences, for the audit trail")
struct RouteTableDifferencesTests {
    /// A table with routes `ids`, each `{"id", "path", "mode", "service"}`, modes overridden by id.
    static func table(
        _ ids: some Sequence<Int>,
        modes: [Int: String] = [:],
        paths: [Int: String] = [:],
        serviceURL: String = "http://127.0.0.1:9101"
    )
        -> String
    {
        let routes = ids.map { index in
            let path = paths[index] ?? "/r\(index)/{id}"
            let mode = modes[index] ?? "legacy"
            return #"{"id": "r\#(index)", "path": "\#(path)", "mode": "\#(mode)", "service": "svc"}"#
        }
        return
            #"{"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "svc": {"url": "\#(serviceURL)"}}, "defaultUpstream": "legacy", "routes": ["#
            + routes.joined(separator: ",\n") + "]}"
    }

    @Test("20,000 routes: changed, added and removed routes and a change outside the routes, in the new file's order then removed ones")
    func largePair() throws {
        let old = try JSONDocument.parse(Data(Self.table(0..<20_000).utf8))
        let new = try JSONDocument.parse(
            Data(
                Self.table(
                    Array(0..<19_999).filter { $0 != 7 } + [20_000],
                    modes: [5: "shadow", 19_998: "service"],
                    paths: [100: "/moved/{id}"],
                    serviceURL: "http://127.0.0.1:9102"
                ).utf8
            )
        )
        let differences = RouteTableDocument.differences(from: old, to: new)
        #expect(differences.map(\.routeID) == ["r5", "r100", "r19998", "r20000", "r7", "r19999", nil])
        let byID = Dictionary(differences.map { ($0.routeID ?? "-", $0) }, uniquingKeysWith: { first, _ in first })
        #expect(byID["r5"]?.before == #"{"id":"r5","path":"/r5/{id}","mode":"legacy","service":"svc"}"#)
        #expect(byID["r5"]?.after == #"{"id":"r5","path":"/r5/{id}","mode":"shadow","service":"svc"}"#)
        #expect(byID["r100"]?.after?.contains(#""path":"/moved/{id}""#) == true)
        #expect(byID["r20000"]?.before == nil && byID["r20000"]?.after != nil)
        #expect(byID["r7"]?.after == nil && byID["r19999"]?.after == nil)
        #expect(byID["-"]?.before?.contains("9101") == true && byID["-"]?.after?.contains("9102") == true)
        #expect(RouteTableDocument.differences(from: new, to: new).isEmpty)
        #expect(RouteTableDocument.differences(from: nil, to: new).count == 19_999, "without an old file every route is new")
    }

    @Test("validated documents and parsed files give the same differences")
    func documentsAgree() throws {
        let oldText = Self.table(0..<6)
        let newText = Self.table([0, 1, 3, 4, 5, 6], modes: [4: "service"], serviceURL: "http://127.0.0.1:9102")
        let documents = RouteTableDocument.differences(
            from: try RouteTableDocument(data: Data(oldText.utf8)),
            to: try RouteTableDocument(data: Data(newText.utf8))
        )
        let files = RouteTableDocument.differences(
            from: try JSONDocument.parse(Data(oldText.utf8)),
            to: try JSONDocument.parse(Data(newText.utf8))
        )
        #expect(documents == files)
        #expect(documents.map(\.routeID) == ["r4", "r6", "r2", nil])
        let document = try RouteTableDocument(data: Data(newText.utf8))
        #expect(document.routeJSONByID.count == 6)
        #expect(document.routeJSONByID["r4"] == document.routeJSON(id: "r4"))
    }

    /// The differences found from the files' bytes, which must be those found by parsing both.
    static func fileDifferences(_ old: String, _ new: String) throws -> [RouteTableDocument.RouteDifference] {
        let bytes = RouteTableDocument.differences(from: Data(old.utf8), to: Data(new.utf8))
        let parsed = RouteTableDocument.differences(from: try JSONDocument.parse(Data(old.utf8)), to: try JSONDocument.parse(Data(new.utf8)))
        #expect(bytes == parsed)
        return bytes
    }

    @Test("differences from the files' bytes equal those from parsing them: flips, moves, additions, removals, layout and upstream edits")
    func bytesAgreeWithParsing() throws {
        let old = Self.table(0..<300)
        #expect(try Self.fileDifferences(old, old).isEmpty)
        #expect(try Self.fileDifferences(old, Self.table(0..<300, modes: [150: "shadow"])).map(\.routeID) == ["r150"])
        // Reordered: nothing differs.
        #expect(try Self.fileDifferences(old, Self.table(Array((0..<300).reversed()))).isEmpty)
        // One added at the front, two removed, one path changed.
        let edited = Self.table([1000] + Array(0..<300).filter { $0 != 10 && $0 != 290 }, paths: [42: "/other/{id}"])
        #expect(try Self.fileDifferences(old, edited).map(\.routeID) == ["r1000", "r42", "r10", "r290"])
        // Only whitespace inside one route: its bytes differ, its value does not.
        let spaced = old.replacingOccurrences(of: #"{"id": "r7", "path""#, with: #"{ "id" :  "r7",  "path""#)
        #expect(spaced != old)
        #expect(try Self.fileDifferences(old, spaced).isEmpty)
        // An upstream edit: compared whole, the change outside the routes included.
        #expect(
            try Self.fileDifferences(old, Self.table(0..<300, modes: [3: "service"], serviceURL: "http://127.0.0.1:9102")).map(\.routeID) == [
                "r3", nil,
            ]
        )
        // A route moved to another id: the old id removed, the new one added.
        let renamed = old.replacingOccurrences(of: #""id": "r5""#, with: #""id": "r5b""#)
        #expect(try Self.fileDifferences(old, renamed).map(\.routeID) == ["r5b", "r5"])
    }
}
