import ArgumentParser
import NIOCore

/// A length of time on the command line: a number with a unit, such as `100us`, `500ms`, `2s`,
/// `1.5s` or `2m`.
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    let amount: TimeAmount
    let text: String

    init(_ amount: TimeAmount, text: String) {
        self.amount = amount
        self.text = text
    }

    init?(argument: String) {
        let units: [(String, Double)] = [("us", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (unit, nanosPerUnit) in units where argument.hasSuffix(unit) {
            let number = argument.dropLast(unit.count)
            // "us" and "ms" also end in "s", so they are tried first.
            guard let value = Double(number), value > 0, value.isFinite else { return nil }
            self.init(.nanoseconds(Int64((value * nanosPerUnit).rounded())), text: argument)
            return
        }
        return nil
    }

    var description: String { text }
    static var defaultCompletionKind: CompletionKind { .default }
}
