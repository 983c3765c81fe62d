import Foundation

/// Reads `routes.json` bytes into a ``JSONValue`` for the validator, refusing what JSON readers
/// disagree on.
///
/// The table is parsed with the strict parser of ``JSONDocument`` rather than Foundation's: it
/// refuses trailing commas and comments (which Foundation's reader lets through), bounds the
/// nesting, checks UTF-8, and keeps a member name that appears twice so that it can be refused.
/// A reviewer reading the file with jq or Python sees the last of two equal keys, and the proxy
/// must never serve a table other than the one they read.
enum RouteTableJSON {
    /// Largest route table read: a 90,000-route table is about 10 MB.
    static let maxBytes = 64 << 20
    /// Deepest nesting accepted; a valid table nests five levels.
    static let maxDepth = 64

    /// The document, every member kept; ``RouteTableValidator/value(of:path:)`` turns it into the
    /// validator's tree and reports duplicate member names.
    static func read(_ data: Data) throws(RouteTableError) -> JSONDocument {
        if data.count > maxBytes {
            throw RouteTableError(problems: [
                .init(path: "$", message: "the file is \(data.count) bytes; a route table may be at most \(maxBytes >> 20) MiB")
            ])
        }
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            throw RouteTableError(problems: [
                .init(path: "$", message: "the file is empty; a route table is a JSON object with \"upstreams\", \"defaultUpstream\" and \"routes\"")
            ])
        }
        if data.starts(with: [0xEF, 0xBB, 0xBF]) {
            throw RouteTableError(problems: [
                .init(path: "$", message: "not valid JSON: the file starts with a byte-order mark; save it as UTF-8 without one")
            ])
        }
        let document: JSONDocument
        do {
            document = try JSONDocument.parse(data, maxDepth: maxDepth, duplicateKeys: .keepAll)
        } catch {
            throw RouteTableError(problems: [.init(path: "$", message: "not valid JSON: \(describe(error, in: data))")])
        }
        return document
    }

    /// "expected a member name at line 3, column 5 (byte 41)".
    static func describe(_ error: JSONDocument.ParseError, in data: Data) -> String {
        var line = 1
        var column = 1
        var offset = 0
        for byte in data {
            if offset == error.offset { break }
            offset += 1
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1  // Columns count characters, not UTF-8 continuation bytes.
            }
        }
        var reason = error.message
        if error.offset < data.count {
            let byte = data[data.startIndex + error.offset]
            if reason == "unexpected character" || reason == "expected a member name" {
                if byte >= 0x80 {
                    reason +=
                        " (byte 0x\(String(byte, radix: 16, uppercase: true)), which is not ASCII; only strings may hold other characters, as UTF-8)"
                } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
                    reason += " (a trailing comma before \"\(Character(Unicode.Scalar(byte)))\"?)"
                } else if byte == UInt8(ascii: "/") || byte == UInt8(ascii: "#") {
                    reason += " (JSON has no comments; describe a route in its \"description\")"
                } else if byte == UInt8(ascii: "'") {
                    reason += " (JSON strings use double quotes)"
                }
            }
        }
        return "\(reason) at line \(line), column \(column)"
    }
}

extension RouteTableValidator {
    /// One step of a JSON path: a member name or an array index.
    enum PathStep {
        case key(String)
        case index(Int)
    }

    /// The validator's tree, with every duplicate member name reported at its JSON path. Of two
    /// equal names the first is kept: the table is refused anyway, and the rest is still checked.
    /// The path is kept as steps and spelled out only for a problem: most tables have none.
    mutating func value(of document: JSONDocument, steps: inout [PathStep]) -> JSONValue {
        switch document {
        case .null: return .null
        case .bool(let value): return .bool(value)
        case .number(let text): return .number(Double(text) ?? .nan)
        case .string(let text): return .string(text)
        case .array(let items):
            var values: [JSONValue] = []
            values.reserveCapacity(items.count)
            for (index, item) in items.enumerated() {
                steps.append(.index(index))
                values.append(value(of: item, steps: &steps))
                steps.removeLast()
            }
            return .array(values)
        case .object(let members):
            var fields: [String: JSONValue] = [:]
            fields.reserveCapacity(members.count)
            for member in members {
                steps.append(.key(member.key))
                defer { steps.removeLast() }
                if fields[member.key] != nil {
                    problem(
                        Self.spell(steps),
                        "duplicate key \(Self.shown(member.key)); JSON readers disagree on which one counts (jq and Python read the last), so keep one"
                    )
                    continue
                }
                if steps.count == 1, member.key == "routes", !reused.isEmpty, case .array(let items) = member.value {
                    fields[member.key] = routesValue(of: items, steps: &steps)
                } else {
                    fields[member.key] = value(of: member.value, steps: &steps)
                }
            }
            return .object(fields)
        }
    }

    /// The "routes" array, with a placeholder for each route taken from ``reused``: those are not
    /// read again.
    private mutating func routesValue(of items: [JSONDocument], steps: inout [PathStep]) -> JSONValue {
        var values: [JSONValue] = []
        values.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            if index < reused.count, reused[index] != nil {
                values.append(.null)
                continue
            }
            steps.append(.index(index))
            values.append(value(of: item, steps: &steps))
            steps.removeLast()
        }
        return .array(values)
    }

    /// `routes[3].mode`, in the validator's spelling.
    static func spell(_ steps: [PathStep]) -> String {
        var path = ""
        for step in steps {
            switch step {
            case .key(let key): path = join(path.isEmpty ? nil : path, key)
            case .index(let index): path += "[\(index)]"
            }
        }
        return path.isEmpty ? "$" : path
    }
}
