import StranglerCore
import Testing

/// Normalises `path` under `reading`; the normal path and the ambiguous kinds seen.
func normalized(_ path: String, reading: PathAmbiguity = .all) throws(PathRefusal) -> (path: String, found: PathAmbiguity) {
    var normalizer = PathNormalizer()
    let found = try normalizer.normalize(path, reading: reading)
    return (String(decoding: normalizer.path, as: UTF8.self), found)
}

/// The refusal `path` gets under `reading`, if any.
func refusal(_ path: String, reading: PathAmbiguity = .all) -> PathRefusal.Reason? {
    do throws(PathRefusal) {
        _ = try normalized(path, reading: reading)
        return nil
    } catch {
        return error.reason
    }
}

func isNormal(_ target: String) -> Bool {
    Array(target.utf8).withUnsafeBytes { PathNormalizer.isNormal($0) }
}

extension PathNormalizer {
    mutating func normalize(_ path: String, reading: PathAmbiguity) throws(PathRefusal) -> PathAmbiguity {
        var result = Result<PathAmbiguity, PathRefusal>.success([])
        Array(path.utf8).withUnsafeBytes { raw in
            result = Result { () throws(PathRefusal) in try normalize(raw, reading: reading) }
        }
        return try result.get()
    }
}

@Suite("Path normalisation")
struct PathNormalizerTests {
    @Test("a normal path passes the one-pass check and normalises to itself")
    func normalPaths() throws {
        for path in [
            "/", "/inventory", "/inventory/SKU-1", "/inventory/", "/a/b.c/.well-known/x", "/a..b/...", "/a/.b/..c", "/x/.../y",
            "/caf\u{E9}", "/a:b@c!$&'()*+,=", "/inventory/SKU-1?q=/../%2F;x#y",
        ] {
            #expect(isNormal(path), "\(path)")
            let query = path.firstIndex(of: "?") ?? path.endIndex
            let result = try normalized(String(path[..<query]))
            #expect(result.path == String(path[..<query]), "\(path)")
            #expect(result.found.isEmpty, "\(path)")
        }
    }

    @Test("the one-pass check sends anything unusual to the normaliser")
    func unusualPaths() {
        for path in [
            "", "inventory", "*", "http://x/inventory", "/%69", "/a\\b", "/a;b", "/a#b", "//a", "/a//b", "/.", "/./a",
            "/a/.", "/..", "/a/..", "/a/../b", "/a/..?q", "/a/.?q",
        ] {
            #expect(!isNormal(path), "\(path)")
        }
        #expect(isNormal("/a/"))
    }

    @Test("escapes of unreserved characters are decoded; the others stay, in upper-case hex")
    func escapes() throws {
        #expect(try normalized("/%69nventory/%53KU-1").path == "/inventory/SKU-1")
        #expect(try normalized("/%41%5a%61%7A%30%39%2d%2E%5f%7e").path == "/AZaz09-._~")
        #expect(try normalized("/caf%c3%a9").path == "/caf%C3%A9")
        #expect(try normalized("/a%20b%3f%23%25%3B%40").path == "/a%20b%3F%23%25%3B%40")
        #expect(try normalized("/a%20b%3f%23%25%3B%40").found.isEmpty)
    }

    @Test("malformed paths are refused under every reading")
    func malformed() {
        for reading in [PathAmbiguity.all, []] {
            #expect(refusal("/%zz", reading: reading) == .invalidEscape)
            #expect(refusal("/a%4", reading: reading) == .invalidEscape)
            #expect(refusal("/a%4g", reading: reading) == .invalidEscape)
            #expect(refusal("/a%", reading: reading) == .invalidEscape)
            #expect(refusal("/a%00b", reading: reading) == .encodedNul)
            #expect(refusal("/a#b", reading: reading) == .fragment)
            #expect(refusal("/..", reading: reading) == .aboveRoot)
            #expect(refusal("/a/../..", reading: reading) == .aboveRoot)
            #expect(refusal("/../inventory/SKU-1", reading: reading) == .aboveRoot)
            #expect(refusal("a/b", reading: reading) == .unsupportedForm)
        }
    }

    @Test("dot segments resolve as RFC 3986 §5.2.4 says, with a trailing slash where one was removed")
    func dotSegments() throws {
        let cases = [
            ("/a/b/c/./../../g", "/a/g"), ("/mid/content=5/../6", "/mid/6"), ("/a/.", "/a/"), ("/a/b/..", "/a/"),
            ("/./a", "/a"), ("/a/./b", "/a/b"), ("/a/..", "/"), ("/.", "/"), ("/x/../inventory/SKU-1", "/inventory/SKU-1"),
            ("/inventory/x/../SKU-1", "/inventory/SKU-1"), ("/.../x", "/.../x"), ("/a/.b/c..", "/a/.b/c.."),
        ]
        for (path, normal) in cases {
            #expect(try normalized(path).path == normal, "\(path)")
            #expect(try normalized(path, reading: []).path == normal, "\(path)")
        }
    }

    @Test("repeated slashes merge; a trailing slash stays")
    func slashes() throws {
        #expect(try normalized("//inventory//SKU-1").path == "/inventory/SKU-1")
        #expect(try normalized("//a//b///").path == "/a/b/")
        #expect(try normalized("//").path == "/")
        #expect(try normalized("/a//./b", reading: []).path == "/a/b")
        #expect(try normalized("", reading: []).path == "/")
    }

    @Test("paths are case-sensitive")
    func caseSensitive() throws {
        #expect(try normalized("/INVENTORY/sku-1").path == "/INVENTORY/sku-1")
        #expect(try normalized("/%49NVENTORY").path == "/INVENTORY")
    }

    @Test("each ambiguous spelling is seen, and read as the reading says")
    func ambiguities() throws {
        // (path, kind, literal reading, the other reading)
        let cases: [(String, PathAmbiguity, String, String)] = [
            ("/inventory%2FSKU-1", .encodedSlash, "/inventory%2FSKU-1", "/inventory/SKU-1"),
            ("/inventory%2fSKU-1", .encodedSlash, "/inventory%2FSKU-1", "/inventory/SKU-1"),
            ("/inventory\\SKU-1", .backslash, "/inventory\\SKU-1", "/inventory/SKU-1"),
            ("/inventory%5cSKU-1", .backslash, "/inventory%5CSKU-1", "/inventory/SKU-1"),
            ("/%2e/inventory", .encodedDot, "/%2E/inventory", "/inventory"),
            ("/x/.%2E/inventory", .encodedDot, "/x/%2E%2E/inventory", "/inventory"),
            ("/x/%2E%2e/inventory", .encodedDot, "/x/%2E%2E/inventory", "/inventory"),
            ("/a//../b", .dotDotAfterEmptySegment, "/a/b", "/b"),
            ("/a/.//../b", .dotDotAfterEmptySegment, "/a/b", "/b"),
            ("/inventory;v=1/SKU-1", .segmentParameter, "/inventory;v=1/SKU-1", "/inventory/SKU-1"),
            ("/x/..;/inventory", .segmentParameter, "/x/..;/inventory", "/inventory"),
        ]
        for (path, kind, literal, other) in cases {
            let read = try normalized(path, reading: kind)
            #expect(read.path == other, "\(path)")
            #expect(read.found == kind, "\(path)")
            let asLiteral = try normalized(path, reading: [])
            #expect(asLiteral.path == literal, "\(path)")
            #expect(try normalized(path, reading: .all).found == kind, "\(path)")
        }
        // An encoded dot that is not a whole dot segment is not ambiguous.
        #expect(try normalized("/file%2ejson/%2e%2e%2e").found.isEmpty)
        #expect(try normalized("/file%2ejson/%2e%2e%2e").path == "/file.json/...")
        // Several kinds at once.
        let mixed = try normalized("/a%2F..;x\\b")
        #expect(mixed.found == [.encodedSlash, .segmentParameter, .backslash])
        #expect(mixed.path == "/b")
    }

    @Test("normalising twice is normalising once, under every reading (seeded)")
    func idempotent() throws {
        var random = SeededRandom(state: 0x5EED_0001)
        var checked = 0
        for _ in 0..<3000 {
            let path = PathSpelling.randomPath(&random)
            for reading in PathSpelling.readings {
                guard let once = try? normalized(path, reading: reading) else { continue }
                let twice = try normalized(once.path, reading: reading)
                #expect(twice.path == once.path, "\(path) under \(reading.rawValue)")
                checked += 1
            }
        }
        #expect(checked > 10_000)
    }

    @Test("a path the one-pass check calls normal is returned unchanged (seeded)")
    func normalUnchanged() throws {
        var random = SeededRandom(state: 0x5EED_0002)
        var normal = 0
        for _ in 0..<5000 {
            let path = PathSpelling.randomPath(&random)
            guard isNormal(path) else { continue }
            normal += 1
            for reading in PathSpelling.readings {
                let result = try normalized(path, reading: reading)
                #expect(result.path == path, "\(path)")
                #expect(result.found.isEmpty, "\(path)")
            }
        }
        #expect(normal > 300)
    }

    @Test("dot, slash and escape spellings of a path normalise to its canonical form (seeded)")
    func spellings() throws {
        var random = SeededRandom(state: 0x5EED_0003)
        for _ in 0..<2000 {
            let segments = PathSpelling.randomSegments(&random)
            let canonical = "/" + segments.joined(separator: "/")
            #expect(try normalized(canonical).path == canonical)
            for _ in 0..<5 {
                let spelling = PathSpelling.unambiguous(segments, &random)
                let result = try normalized(spelling, reading: [])
                #expect(result.path == canonical, "\(spelling)")
                #expect(result.found.isEmpty, "\(spelling)")
                // Its reading does not matter: there is nothing ambiguous in it.
                #expect(try normalized(spelling, reading: .all).path == canonical, "\(spelling)")
            }
        }
    }

    @Test("route templates keep literal segments in normal form")
    func templates() throws {
        let template = try PathTemplate.parse("/%7Euser/%41b%2fc/{id}/**").get()
        #expect(template.segments == [.literal("~user"), .literal("Ab%2Fc"), .param("id")])
        #expect(template.description == "/%7Euser/%41b%2fc/{id}/**")
        for bad in ["/a/./b", "/a/../b", "/.", "/a/%zz", "/a/%00"] {
            guard case .failure = PathTemplate.parse(bad) else {
                Issue.record("\(bad) was accepted")
                continue
            }
        }
    }
}

/// Random paths and spellings of paths, for the seeded property tests.
enum PathSpelling {
    /// A reading for each subset of kinds that matter on their own, plus none and all.
    static let readings: [PathAmbiguity] =
        [[], .all] + PathAmbiguity.kinds + [[.encodedSlash, .encodedDot], [.backslash, .dotDotAfterEmptySegment]]

    static let names = ["inventory", "SKU-1", "a", "b.c", "x~y", "caf%C3%A9", "a%20b", "...", ".x", "v1"]

    /// Any path: names, dots, escapes (some invalid), separators of every kind.
    static func randomPath(_ random: inout SeededRandom) -> String {
        let pieces = [
            "/", "/", "/", "a", "b", "SKU-1", ".", "..", "%2e", "%2E", "%2f", "%2F", "\\", "%5c", ";", ";v=1", "%41", "%7e", "%c3%a9",
            "%20", "~", "-", "_", "%zz", "%00", "x", "//",
        ]
        var path = "/"
        for _ in 0..<random.below(12) { path += pieces[random.below(pieces.count)] }
        return path
    }

    static func randomSegments(_ random: inout SeededRandom) -> [String] {
        (0..<(1 + random.below(4))).map { _ in names[random.below(names.count)] }
    }

    /// A spelling of `/` + `segments` with nothing ambiguous: unreserved characters escaped in
    /// either hex case, `.` segments, `//`, and `name/..` detours (never after a `//`, which
    /// would be ambiguous).
    static func unambiguous(_ segments: [String], _ random: inout SeededRandom) -> String {
        let detours = random.below(2) == 0
        var path = ""
        for segment in segments {
            path += detours || random.below(3) > 0 ? "/" : "//"
            if random.below(3) == 0 { path += "./" }
            if detours, random.below(3) == 0 { path += escaped(names[random.below(names.count)], &random) + "/../" }
            if !detours, random.below(4) == 0 { path += "/" }
            path += escaped(segment, &random)
        }
        return path
    }

    /// `text` with some unreserved characters escaped, in a random hex case.
    static func escaped(_ text: String, _ random: inout SeededRandom) -> String {
        guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~".contains($0)) }) else { return text }
        var result = ""
        for byte in text.utf8 {
            if random.below(3) == 0 {
                let hex = String(byte, radix: 16, uppercase: random.below(2) == 0)
                result += "%" + (hex.count == 1 ? "0" + hex : hex)
            } else {
                result += String(UnicodeScalar(byte))
            }
        }
        return result
    }
}
