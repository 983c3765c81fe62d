/// Makes text that came from data safe to print on an operator's terminal.
///
/// Actors, reasons, route ids, paths and response values can hold bytes a terminal acts on
/// instead of showing: ESC starts sequences that recolour, move the cursor, retitle the window or
/// rewrite the clipboard; CR and BS overwrite what was printed; C1 controls (U+0080–U+009F) are
/// the 8-bit forms of the same sequences; bidi overrides and isolates reorder the rest of the
/// line so that it reads differently from what it is. Every such character is spelled out
/// (`\u{1B}`, `\n`, `\r`, `\t`), so the operator sees that it is there and nothing happens.
/// Everything else, including ordinary non-ASCII text, is printed as it is.
///
/// Escaped text contains none of those characters, so escaping twice changes nothing more.
public enum TerminalText {
    /// `text` with every character a terminal would act on spelled out.
    public static func escape(_ text: String) -> String {
        // Most values are plain printable ASCII: one pass over the bytes, no copy.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                result += spelled(scalar)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// ``escape(_:)`` for part of a string.
    public static func escape(_ text: Substring) -> String {
        escape(String(text))
    }

    /// Like ``escape(_:)`` but keeps line feeds, for a message that is several lines on purpose
    /// (an error followed by its problems). Each line is escaped on its own.
    public static func escapeKeepingLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { escape($0) }.joined(separator: "\n")
    }

    /// The first character ``escape(_:)`` would spell out, if any: input that should be refused
    /// rather than stored (an audit trail's actor and reason are plain text).
    public static func firstUnsafeCharacter(in text: String) -> Unicode.Scalar? {
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) { return nil }
        return text.unicodeScalars.first(where: isUnsafe)
    }

    /// `U+001B`: how messages name a character that can't be shown.
    public static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }

    /// C0 controls, DEL, C1 controls, and the bidi embeddings, overrides and isolates.
    static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x202A...0x202E, 0x2066...0x2069: true
        // Marks that reorder text (LRM, RLM, ALM) and the line and paragraph separators, which
        // some terminals and log viewers break lines at.
        case 0x200E, 0x200F, 0x061C, 0x2028, 0x2029: true
        default: false
        }
    }

    private static func spelled(_ scalar: Unicode.Scalar) -> String {
        switch scalar {
        case "\n": "\\n"
        case "\r": "\\r"
        case "\t": "\\t"
        default: "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
        }
    }
}
