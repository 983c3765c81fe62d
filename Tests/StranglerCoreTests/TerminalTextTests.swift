import StranglerCore
import Testing

@Suite("TerminalText: values made safe to print on a terminal")
struct TerminalTextTests {
    @Test("plain text, ASCII or not, is printed as it is")
    func plainTextUnchanged() {
        for text in ["", "inventory-read", "GET /orders/{id}", "jane (token ops-bot)", "café — 注文 ✓ 🚀", "a\\u{1B}b", "\u{A0}\u{202F}\u{2065}"] {
            #expect(TerminalText.escape(text) == text)
            #expect(TerminalText.firstUnsafeCharacter(in: text) == nil, "\(text)")
        }
    }

    @Test("C0 controls, DEL, C1 controls and bidi overrides are spelled out")
    func controlsSpelledOut() {
        #expect(TerminalText.escape("a\u{1B}[31mred\u{1B}[0m") == #"a\u{1B}[31mred\u{1B}[0m"#)
        #expect(TerminalText.escape("line\nnext\rover\ttab") == #"line\nnext\rover\ttab"#)
        #expect(TerminalText.escape("\u{0}\u{7}\u{8}\u{7F}") == #"\u{0}\u{7}\u{8}\u{7F}"#)
        #expect(TerminalText.escape("\u{1B}]0;title\u{7}") == #"\u{1B}]0;title\u{7}"#)
        #expect(TerminalText.escape("\u{80}\u{9B}31m\u{9F}") == #"\u{80}\u{9B}31m\u{9F}"#)
        #expect(TerminalText.escape("invoice\u{202E}fdp.exe") == #"invoice\u{202E}fdp.exe"#)
        #expect(TerminalText.escape("\u{202A}\u{202D}\u{2066}\u{2069}") == #"\u{202A}\u{202D}\u{2066}\u{2069}"#)
        #expect(TerminalText.escape("é\u{1B}") == #"é\u{1B}"#, "non-ASCII text beside a control keeps its characters")
        #expect(TerminalText.escape("a\u{2028}b\u{2029}c\u{200F}d\u{061C}e\u{200E}") == #"a\u{2028}b\u{2029}c\u{200F}d\u{61C}e\u{200E}"#)
    }

    @Test("no escaped text holds a character a terminal acts on, and escaping again changes nothing")
    func everyScalarIsSafeAfterwards() {
        var all = String.UnicodeScalarView()
        for value in UInt32(0)...0x2FFF {
            if let scalar = Unicode.Scalar(value) { all.append(scalar) }
        }
        let escaped = TerminalText.escape(String(all))
        #expect(TerminalText.firstUnsafeCharacter(in: escaped) == nil)
        #expect(TerminalText.escape(escaped) == escaped)
        #expect(escaped.unicodeScalars.allSatisfy { $0.value >= 0x20 && !(0x7F...0x9F).contains($0.value) })
    }

    @Test("a message of several lines keeps its line breaks and escapes each line")
    func keepingLines() {
        #expect(TerminalText.escapeKeepingLines("problems:\n  routes[0].id: \"a\u{1B}[2J\"\n") == "problems:\n  routes[0].id: \"a\\u{1B}[2J\"\n")
        #expect(TerminalText.escapeKeepingLines("one\rtwo") == #"one\rtwo"#)
    }

    @Test("the first unsafe character is found and named by its code point")
    func firstUnsafe() throws {
        #expect(TerminalText.firstUnsafeCharacter(in: "ok\u{1B}[31m\u{9B}") == "\u{1B}")
        let bidi = try #require(TerminalText.firstUnsafeCharacter(in: "x\u{2067}"))
        #expect(TerminalText.codePoint(bidi) == "U+2067")
        #expect(TerminalText.codePoint("\u{1B}") == "U+001B")
        #expect(TerminalText.codePoint("\u{7F}") == "U+007F")
    }
}
