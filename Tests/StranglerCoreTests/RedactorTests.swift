import StranglerCore
import Testing

@Suite("Redaction before storage")
struct RedactorTests {
    @Test("Luhn-valid card numbers are masked to the last four digits; other digit runs are kept")
    func cards() {
        #expect(Redactor.maskSensitive(#"{"card":"4111111111111111"}"#) == #"{"card":"************1111"}"#)
        #expect(Redactor.maskSensitive("paid with 4111 1111 1111 1111 today") == "paid with ************1111 today")
        #expect(Redactor.maskSensitive("5500-0000-0000-0004") == "************0004")
        #expect(Redactor.maskSensitive("order 4111111111111112") == "order 4111111111111112")  // fails Luhn
        #expect(Redactor.maskSensitive("sku 123456789012") == "sku 123456789012")  // too short for a card
        #expect(Redactor.maskSensitive("LEGACY_ROW_ID 70013") == "LEGACY_ROW_ID 70013")
    }

    @Test("e-mail addresses are masked")
    func emails() {
        #expect(Redactor.maskSensitive(#""ada.lovelace1@example.com""#) == #""<email>""#)
        #expect(Redactor.maskSensitive("to a+b@mail.example.org, cc c@d.io.") == "to <email>, cc <email>.")
        #expect(Redactor.maskSensitive("user@localhost and @handle") == "user@localhost and @handle")
    }

    @Test("values at compare.redact pointers are replaced whole; others are scanned")
    func pointers() {
        let redactor = Redactor(pointers: ["/customer/name", "/items/*/note"])
        let named = redactor.redact(Difference(kind: .changed, pointer: "/customer/name", primary: "\"Ada\"", candidate: "\"Grace\""))
        #expect(named.primary == "<redacted>")
        #expect(named.candidate == "<redacted>")
        let note = redactor.redact(Difference(kind: .missing, pointer: "/items/3/note", primary: "\"gift\"", candidate: nil))
        #expect(note.primary == "<redacted>")
        #expect(note.candidate == nil)
        let other = redactor.redact(Difference(kind: .changed, pointer: "/email", primary: "\"a@b.com\"", candidate: "\"x\""))
        #expect(other.primary == "\"<email>\"")
        #expect(other.candidate == "\"x\"")
    }
}
