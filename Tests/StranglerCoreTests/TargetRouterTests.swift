import Foundation
import StranglerCore
import Testing

@Suite("Routing request targets on their normal path")
struct TargetRouterTests {
    static let table = try! RouteTable.parse(
        Data(
            """
            {"upstreams": {"legacy": {"url": "http://127.0.0.1:9000"}, "service": {"url": "http://127.0.0.1:9001"}},
             "defaultUpstream": "legacy",
             "routes": [
               {"id": "inv", "path": "/inventory/**", "mode": "retired", "service": "service"},
               {"id": "order", "path": "/orders/{id}", "mode": "legacy"},
               {"id": "files", "path": "/files/**", "mode": "legacy"},
               {"id": "root", "path": "/", "mode": "legacy"}
             ]}
            """.utf8
        )
    )

    enum Outcome: Equatable, CustomStringConvertible {
        case route(String)
        case unmatched
        case refused(PathRefusal.Reason)

        var description: String {
            switch self {
            case .route(let id): "route \(id)"
            case .unmatched: "default upstream"
            case .refused(let reason): "refused (\(reason))"
            }
        }
    }

    static func route(_ target: String, method: String = "GET", router: inout TargetRouter) -> Outcome {
        var outcome = Outcome.unmatched
        Array(target.utf8).withUnsafeBytes { raw in
            do throws(PathRefusal) {
                if let index = try router.matchIndex(in: table.matcher, method: method, target: raw, request: RequestDetails(target: target)) {
                    outcome = .route(table.routes[index].id)
                }
            } catch {
                outcome = .refused(error.reason)
            }
        }
        return outcome
    }

    static func route(_ target: String, method: String = "GET", policy: AmbiguousPathPolicy = .reject) -> Outcome {
        var router = TargetRouter(policy: policy)
        return route(target, method: method, router: &router)
    }

    static func path(in target: String, method: String = "GET") throws(PathRefusal) -> String? {
        let bytes = Array(target.utf8)
        var range: Range<Int>?
        var failure: PathRefusal?
        bytes.withUnsafeBytes { raw in
            do throws(PathRefusal) {
                range = try RequestTarget.path(in: raw, method: method)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return range.map { String(decoding: bytes[$0], as: UTF8.self) }
    }

    @Test("the path of each target form")
    func targetForms() throws {
        #expect(try Self.path(in: "/inventory/SKU-1?q=1") == "/inventory/SKU-1")
        #expect(try Self.path(in: "http://x/inventory/SKU-1?q=1") == "/inventory/SKU-1")
        #expect(try Self.path(in: "HTTP://x/inventory/SKU-1") == "/inventory/SKU-1")
        #expect(try Self.path(in: "hTTpS://user@shop.example:8443/inventory") == "/inventory")
        #expect(try Self.path(in: "http://[::1]:80/a") == "/a")
        #expect(try Self.path(in: "http://x") == "")
        #expect(try Self.path(in: "http://x?q=/inventory") == "")
        #expect(try Self.path(in: "*", method: "OPTIONS") == nil)
        func refused(_ target: String, method: String = "GET") -> PathRefusal.Reason? {
            do throws(PathRefusal) {
                _ = try Self.path(in: target, method: method)
                return nil
            } catch {
                return error.reason
            }
        }
        #expect(refused("*") == .unsupportedForm)
        #expect(refused("shop.example:443", method: "CONNECT") == .unsupportedForm)
        #expect(refused("inventory/SKU-1") == .unsupportedForm)
        #expect(refused("ftp://x/inventory") == .unsupportedForm)
        #expect(refused("http:/x/inventory") == .unsupportedForm)
        #expect(refused("") == .unsupportedForm)
        #expect(refused("http:///inventory") == .invalidAuthority)
        #expect(refused("http://x\\inventory/SKU-1") == .invalidAuthority)
        #expect(refused("http://x#/inventory") == .fragment)
    }

    @Test("every spelling of /inventory/SKU-1 routes to inv or is refused; none reaches the default upstream")
    func spellingsOfARetiredRoute() {
        let routed = [
            "/inventory/SKU-1", "http://x/inventory/SKU-1", "HTTP://x/inventory/SKU-1?q=1", "https://x:1/inventory/SKU-1",
            "/x/../inventory/SKU-1", "//inventory/SKU-1", "/%69nventory/SKU-1", "/./inventory/SKU-1", "/inventory/./SKU-1",
            "/inventory//SKU-1", "/inventory/%53KU-1", "/inventory/x/../SKU-1", "/inventory/SKU-1/.", "http://x//inventory/./SKU-1",
        ]
        for target in routed {
            #expect(Self.route(target) == .route("inv"), "\(target)")
        }
        let refused: [(String, PathRefusal.Reason)] = [
            ("/inventory%2FSKU-1", .ambiguous(.encodedSlash)), ("/inventory%2fSKU-1", .ambiguous(.encodedSlash)),
            ("/%2e/inventory/SKU-1", .ambiguous(.encodedDot)), ("/inventory/%2E%2E/x", .ambiguous(.encodedDot)),
            ("/inventory\\SKU-1", .ambiguous(.backslash)), ("/inventory%5cSKU-1", .ambiguous(.backslash)),
            ("/inventory;x/SKU-1", .ambiguous(.segmentParameter)), ("/x/..;/inventory/SKU-1", .ambiguous(.segmentParameter)),
            ("/../inventory/SKU-1", .aboveRoot), ("/inventory/..%2f..", .ambiguous(.encodedSlash)),
            ("/inventory/SKU-1%2f..", .ambiguous(.encodedSlash)),
            ("/x//../inventory/SKU-1", .ambiguous(.dotDotAfterEmptySegment)), ("/inventory/%zz", .invalidEscape),
            ("/inventory/SKU-1%00", .encodedNul), ("/inventory/SKU-1#x", .fragment), ("inventory/SKU-1", .unsupportedForm),
        ]
        for (target, reason) in refused {
            #expect(Self.route(target) == .refused(reason), "\(target)")
        }
        // Paths are case-sensitive: another path, not another spelling.
        #expect(Self.route("/INVENTORY/SKU-1") == .unmatched)
        #expect(Self.route("/%49NVENTORY/SKU-1") == .unmatched)
    }

    @Test("other routes and forms")
    func otherRoutes() {
        #expect(Self.route("http://x") == .route("root"))
        #expect(Self.route("http://x?q=1") == .route("root"))
        #expect(Self.route("/a/..") == .route("root"))
        #expect(Self.route("*", method: "OPTIONS") == .unmatched)
        #expect(Self.route("*") == .refused(.unsupportedForm))
        #expect(Self.route("/orders/%4FRD-1") == .route("order"))
        #expect(Self.route("/orders/caf%c3%a9") == .route("order"))
        #expect(Self.route("/orders/ORD-1/x/..") == .unmatched)  // "/orders/ORD-1/": a trailing slash stays
    }

    @Test("forward-when-routes-agree forwards an ambiguous path only when every reading picks the same route")
    func routesAgree() {
        let agree = AmbiguousPathPolicy.forwardWhenRoutesAgree
        // Inside a catch-all route every reading lands in it.
        #expect(Self.route("/files/a%2Fb", policy: agree) == .route("files"))
        #expect(Self.route("/files/a\\b;v=1/%2e%2e/c", policy: agree) == .route("files"))
        #expect(Self.route("/inventory/SKU-1%2f..", policy: agree) == .route("inv"))
        #expect(Self.route("/nowhere/a%2Fb", policy: agree) == .unmatched)
        // Where the reading changes the route, or one reading is refused, it is refused.
        for target in [
            "/inventory%2FSKU-1", "/%2e/inventory/SKU-1", "/inventory\\SKU-1", "/inventory;x/SKU-1", "/x/..;/inventory/SKU-1",
            "/x//../inventory/SKU-1", "/orders/ORD%2F1", "/inventory/%2e%2e/x",
        ] {
            guard case .refused(.readingsDisagree) = Self.route(target, policy: agree) else {
                Issue.record("\(target): \(Self.route(target, policy: agree))")
                continue
            }
        }
        // Above the root only when %2F is a separator.
        #expect(Self.route("/inventory/..%2f..", policy: agree) == .refused(.readingsDisagree(.encodedSlash)))
        #expect(Self.route("/inventory/..%2f..") == .refused(.ambiguous(.encodedSlash)))
        // Malformed paths are refused whatever the policy.
        #expect(Self.route("/files/%zz", policy: agree) == .refused(.invalidEscape))
        #expect(Self.route("/../files/a", policy: agree) == .refused(.aboveRoot))
    }

    @Test("a refusal names what it refused and, when readings disagree, the routes")
    func messages() throws {
        var router = TargetRouter(policy: .forwardWhenRoutesAgree)
        let bytes = Array("/inventory%2FSKU-1".utf8)
        var message = ""
        bytes.withUnsafeBytes { raw in
            do throws(PathRefusal) {
                _ = try router.matchIndex(in: Self.table.matcher, method: "GET", target: raw, request: RequestDetails(target: "/"))
            } catch {
                message = error.message
            }
        }
        #expect(message.contains(#"an encoded "/" (%2F)"#))
        #expect(message.contains(#"route "inv""#))
        #expect(message.contains("the default upstream"))
    }

    @Test("the routed path, for a {param} canary key, is the normal path of any spelling")
    func routedPath() {
        var router = TargetRouter()
        for (target, path) in [
            ("/orders/ORD-1?x=1", "/orders/ORD-1?x=1"), ("/orders/%4FRD-1", "/orders/ORD-1"), ("http://x/orders/ORD-1?q", "/orders/ORD-1"),
            ("http://x", "/"), ("//orders/./ORD-1", "/orders/ORD-1"),
        ] {
            _ = Self.route(target, router: &router)
            let routed = router.routedPath(of: target)
            #expect(routed == path, "\(target)")
            #expect(CanarySplit.parameter("id", of: try! PathTemplate.parse("/orders/{id}").get(), uri: routed) == (path == "/" ? nil : "ORD-1"))
        }
    }

    @Test("random spellings that some upstream reads as /inventory/SKU-1 never reach the default upstream (seeded)")
    func noBypass() {
        var random = SeededRandom(state: 0x5EED_0004)
        var outcomes: [String: Int] = [:]
        for _ in 0..<4000 {
            let target = Self.bypassAttempt(&random)
            // The reading with every separator and dot segment decoded is the one the spelling
            // was built for.
            #expect((try? normalized(Self.pathPart(of: target), reading: .all).path) == "/inventory/SKU-1", "\(target)")
            for policy in AmbiguousPathPolicy.allCases {
                let outcome = Self.route(target, policy: policy)
                switch outcome {
                case .route("inv"), .refused: break
                default: Issue.record("\(target) under \(policy): \(outcome)")
                }
                outcomes["\(policy) \(outcome)", default: 0] += 1
            }
        }
        // Both outcomes happen under both policies, so the check above checked something.
        #expect(outcomes.keys.filter { $0.hasSuffix("route inv") }.count == 2)
        #expect(outcomes.keys.filter { $0.contains("refused") }.count >= 2)
    }

    static func pathPart(of target: String) -> String {
        var text = Substring(target)
        if text.hasPrefix("http://") { text = text.dropFirst("http://x".count) }
        return String(text.prefix { $0 != "?" })
    }

    /// A spelling of `/inventory/SKU-1` that reads as it under ``PathAmbiguity/all``.
    static func bypassAttempt(_ random: inout SeededRandom) -> String {
        let separators = ["/", "/", "//", "%2F", "%2f", "\\", "%5C", "%5c"]
        let dots = [".", "%2e", "%2E"]
        func separator() -> String { separators[random.below(separators.count)] }
        func dotSegment(_ count: Int) -> String { (0..<count).map { _ in dots[random.below(dots.count)] }.joined() }
        func name(_ text: String) -> String {
            var spelled = PathSpelling.escaped(text, &random)
            if random.below(5) == 0 { spelled += [";", ";v=1", ";jsessionid=x"][random.below(3)] }
            return spelled
        }
        var path = "/"
        for segment in ["inventory", "SKU-1"] {
            switch random.below(4) {
            case 0: path += dotSegment(1) + separator()
            case 1: path += name(PathSpelling.names[random.below(PathSpelling.names.count)]) + separator() + dotSegment(2) + separator()
            default: break
            }
            path += name(segment)
            if segment == "inventory" { path += separator() }
        }
        if random.below(4) == 0 { path = "http://x" + path }
        if random.below(4) == 0 { path += "?q=1" }
        return path
    }
}
