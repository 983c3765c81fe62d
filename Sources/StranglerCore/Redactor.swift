/// Masks sensitive values in differences before they are stored (README.md, "The route table:
/// `routes.json`", Shadow mode): card numbers (digit runs of 13–19 that pass the Luhn check),
/// e-mail addresses, and anything at a pointer listed in `compare.redact`.
public struct Redactor: Sendable {
    private let patterns: [PointerPattern]

    /// - Parameter pointers: the route's `compare.redact` pointers (`*` matches one segment).
    public init(pointers: [String] = []) {
        patterns = pointers.map(PointerPattern.init)
    }

    /// The difference with both values redacted.
    public func redact(_ difference: Difference) -> Difference {
        var result = difference
        if patterns.contains(where: { $0.covers(pointer: difference.pointer) }) {
            result.primary = difference.primary.map { _ in "<redacted>" }
            result.candidate = difference.candidate.map { _ in "<redacted>" }
            return result
        }
        result.primary = difference.primary.map(Self.maskSensitive)
        result.candidate = difference.candidate.map(Self.maskSensitive)
        return result
    }

    /// Masks card numbers (keeping the last four digits) and e-mail addresses in free text.
    public static func maskSensitive(_ text: String) -> String {
        maskEmails(maskCards(text))
    }

    static func maskCards(_ text: String) -> String {
        let characters = Array(text)
        var output = ""
        output.reserveCapacity(text.utf8.count)
        var index = 0
        while index < characters.count {
            guard characters[index].isASCII, characters[index].isNumber, index == 0 || !characters[index - 1].isNumber else {
                output.append(characters[index])
                index += 1
                continue
            }
            // The longest run of digits with single space or dash separators.
            var end = index
            var digits: [Int] = []
            var cursor = index
            while cursor < characters.count {
                let character = characters[cursor]
                if character.isASCII, let digit = character.wholeNumberValue {
                    digits.append(digit)
                    cursor += 1
                    end = cursor
                } else if character == " " || character == "-", cursor + 1 < characters.count,
                    characters[cursor + 1].isASCII, characters[cursor + 1].isNumber, !digits.isEmpty
                {
                    cursor += 1
                } else {
                    break
                }
            }
            if (13...19).contains(digits.count), luhnValid(digits) {
                output += String(repeating: "*", count: digits.count - 4) + digits.suffix(4).map(String.init).joined()
            } else {
                output += String(characters[index..<end])
            }
            index = end
        }
        return output
    }

    static func luhnValid(_ digits: [Int]) -> Bool {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0
    }

    static func maskEmails(_ text: String) -> String {
        guard text.contains("@") else { return text }
        let characters = Array(text)
        func isLocal(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || "._%+-".contains(c)) }
        func isDomain(_ c: Character) -> Bool { c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == ".") }
        var output = ""
        var index = 0
        var pending = 0  // start of the current run of local-part characters in `characters`
        while index < characters.count {
            let character = characters[index]
            if character == "@", index > pending, index + 1 < characters.count {
                var end = index + 1
                while end < characters.count, isDomain(characters[end]) { end += 1 }
                // A sentence's full stop after an address is not part of the domain.
                while end > index + 1, characters[end - 1] == "." { end -= 1 }
                let domain = String(characters[(index + 1)..<end])
                if domain.contains("."), !domain.hasPrefix("-") {
                    output.removeLast(index - pending)
                    output += "<email>"
                    index = end
                    pending = index
                    continue
                }
            }
            output.append(character)
            index += 1
            if !isLocal(character) { pending = index }
        }
        return output
    }
}
