import Foundation

/// A migration file cut into statements for PostgreSQL, whose extended query protocol (the one
/// that binds parameters) takes one statement at a time.
///
/// Cuts at `;` outside quotes, `"identifiers"`, dollar-quoted bodies (`$$ ... $$`, `$tag$ ...
/// $tag$`) and comments; drops comments and empty statements.
enum SQLScript {
    static func statements(_ sql: String) -> [String] {
        var statements: [String] = []
        var current = ""
        let characters = Array(sql)
        var index = 0
        func flush() {
            let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !trimmed.isEmpty { statements.append(trimmed) }
            current = ""
        }
        while index < characters.count {
            let character = characters[index]
            let next: Character? = index + 1 < characters.count ? characters[index + 1] : nil
            switch character {
            case "-" where next == "-":
                // A line comment: skip to the end of the line.
                while index < characters.count, characters[index] != "\n" { index += 1 }
                continue
            case "/" where next == "*":
                index += 2
                while index + 1 < characters.count, !(characters[index] == "*" && characters[index + 1] == "/") { index += 1 }
                index += 2
                // A comment separates tokens as a space does.
                current.append(" ")
                continue
            case "'", "\"":
                // A quoted literal or identifier; a doubled quote stays inside it.
                current.append(character)
                index += 1
                while index < characters.count {
                    current.append(characters[index])
                    if characters[index] == character {
                        if index + 1 < characters.count, characters[index + 1] == character {
                            current.append(characters[index + 1])
                            index += 2
                            continue
                        }
                        break
                    }
                    index += 1
                }
                index += 1
                continue
            case "$":
                // A dollar-quoted body: `$tag$` up to the same tag.
                var end = index + 1
                while end < characters.count, characters[end].isLetter || characters[end].isNumber || characters[end] == "_" { end += 1 }
                if end < characters.count, characters[end] == "$" {
                    let tag = String(characters[index...end])
                    let rest = String(characters[(end + 1)...])
                    if let close = rest.range(of: tag) {
                        let body = tag + rest[..<close.upperBound]
                        current += body
                        index = end + 1 + rest.distance(from: rest.startIndex, to: close.upperBound)
                        continue
                    }
                }
                current.append(character)
            case ";":
                flush()
            default:
                current.append(character)
            }
            index += 1
        }
        flush()
        return statements
    }
}
