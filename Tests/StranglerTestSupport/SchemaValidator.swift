import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerProxy

/// Checks an answer against an OpenAPI 3.1 document: the subset of JSON Schema the admin API's
/// document uses (`$ref`, `type`, `enum`, `properties`, `required`, `additionalProperties`,
/// `items`). Parsed with the core's exact JSON parser, so a boolean is never taken for a number.
package struct SchemaValidator {
    package let spec: JSONDocument

    package init(spec: JSONDocument) {
        self.spec = spec
    }

    /// "GET /api/routes" for every operation in `paths`.
    package func operations() -> Set<String> {
        var result = Set<String>()
        for (path, item) in members(lookup(spec, ["paths"])) {
            for (method, _) in members(item) { result.insert("\(method.uppercased()) \(path)") }
        }
        return result
    }

    package func validate(answer: Data, contentType: String, method: String, path: String, status: Int) -> [String] {
        guard let operation = lookup(spec, ["paths", path, method.lowercased()]) else { return ["\(method) \(path) is not documented"] }
        guard var response = lookup(operation, ["responses", String(status)]) else {
            return ["status \(status) is not documented for \(method) \(path)"]
        }
        response = resolve(response)
        let media = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard let schema = lookup(response, ["content", media, "schema"]) else {
            return ["content type \(media) is not documented for \(method) \(path) \(status)"]
        }
        if media != "application/json" { return [] }
        do {
            return check(try JSONDocument.parse(answer), against: schema, at: "$")
        } catch {
            return ["the answer is not JSON: \(error)"]
        }
    }

    private func check(_ value: JSONDocument, against rawSchema: JSONDocument, at place: String) -> [String] {
        let schema = resolve(rawSchema)
        var problems: [String] = []
        if case .string(let type)? = lookup(schema, ["type"]), !matches(value, type: type) {
            return ["\(place): expected \(type), found \(value.typeName)"]
        }
        if case .array(let options)? = lookup(schema, ["enum"]), !options.contains(value) {
            problems.append("\(place): \(value.text) is not one of \(JSONDocument.array(options).text)")
        }
        if case .object(let fields) = value {
            let properties = members(lookup(schema, ["properties"]))
            if case .array(let required)? = lookup(schema, ["required"]) {
                for case .string(let name) in required where !fields.contains(where: { $0.key == name }) {
                    problems.append("\(place): required member \"\(name)\" is missing")
                }
            }
            for field in fields {
                if let property = properties.first(where: { $0.0 == field.key })?.1 {
                    problems += check(field.value, against: property, at: "\(place).\(field.key)")
                } else if let extra = lookup(schema, ["additionalProperties"]) {
                    if extra == .bool(false) {
                        problems.append("\(place): member \"\(field.key)\" is not in the schema")
                    } else if case .object = extra {
                        problems += check(field.value, against: extra, at: "\(place).\(field.key)")
                    }
                }
            }
        }
        if case .array(let items) = value, let itemSchema = lookup(schema, ["items"]) {
            for (index, item) in items.enumerated() { problems += check(item, against: itemSchema, at: "\(place)[\(index)]") }
        }
        return problems
    }

    private func matches(_ value: JSONDocument, type: String) -> Bool {
        switch (type, value) {
        case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool), ("null", .null), ("number", .number): true
        case ("integer", .number(let text)): !text.contains(".") && !text.lowercased().contains("e")
        default: false
        }
    }

    private func resolve(_ schema: JSONDocument) -> JSONDocument {
        guard case .string(let reference)? = lookup(schema, ["$ref"]), reference.hasPrefix("#/") else { return schema }
        let target = lookup(spec, reference.dropFirst(2).split(separator: "/").map(String.init)) ?? .null
        return resolve(target)
    }

    private func lookup(_ value: JSONDocument?, _ keys: [String]) -> JSONDocument? {
        var current = value
        for key in keys {
            guard case .object(let fields)? = current, let next = fields.last(where: { $0.key == key }) else { return nil }
            current = next.value
        }
        return current
    }

    private func members(_ value: JSONDocument?) -> [(String, JSONDocument)] {
        guard case .object(let fields)? = value else { return [] }
        return fields.map { ($0.key, $0.value) }
    }
}
