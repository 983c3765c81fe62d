import Foundation
import StranglerCore

/// What a stored mismatch differed in, as much as the evidence needs to judge it later: learned
/// noise and accepted differences change after the comparison, so a rollup counts mismatches by
/// signature and the reading excuses each signature as the per-row store excuses each row.
///
/// The per-row reading (``SQLiteDiffStore/breakdown(routeID:serviceUpstream:since:bucketSeconds:)``)
/// looks at four things of a mismatch: whether its status columns differ, whether it has a
/// `header` difference, the pointers of its body differences (every kind but `status` and
/// `header`), and whether it has any difference row at all (one without rows gets a NULL flag set
/// there and counts as a sample only). A signature keeps exactly those.
public struct MismatchSignature: Sendable, Hashable {
    /// The two status codes differ (nil against a code counts as differing, as `IS NOT` does).
    public var statusDiffers: Bool
    /// At least one `header` difference.
    public var headerDiffers: Bool
    /// The mismatch has at least one stored difference.
    public var hasDifferences: Bool
    /// The distinct pointers of its body differences, in UTF-8 byte order.
    public var bodyPointers: [String]

    /// A signature from its parts; `bodyPointers` is sorted and deduplicated.
    public init(statusDiffers: Bool, headerDiffers: Bool, hasDifferences: Bool, bodyPointers: some Sequence<String>) {
        self.statusDiffers = statusDiffers
        self.headerDiffers = headerDiffers
        self.hasDifferences = hasDifferences
        self.bodyPointers = Self.canonicalOrder(bodyPointers)
    }

    /// The signature of a mismatch record.
    public init(_ record: ComparisonRecord) {
        self.init(
            statusDiffers: record.primaryStatus != record.candidateStatus,
            headerDiffers: record.differences.contains { $0.kind == .header },
            hasDifferences: !record.differences.isEmpty,
            bodyPointers: record.differences.lazy.filter { Self.isBody($0.kind) }.map(\.pointer)
        )
    }

    /// Whether a difference kind is a body difference for the evidence: every kind but `status`
    /// and `header`.
    public static func isBody(_ kind: DifferenceKind) -> Bool {
        kind != .status && kind != .header
    }

    /// Distinct strings in UTF-8 byte order, which is SQLite's `BINARY` collation. Bytes, not
    /// `String`'s `==` and `<`: those treat canonically equivalent spellings as one string, where
    /// the store keeps them apart.
    static func canonicalOrder(_ strings: some Sequence<String>) -> [String] {
        var sorted = strings.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        var kept = 0
        for index in sorted.indices where kept == 0 || !sorted[index].utf8.elementsEqual(sorted[kept - 1].utf8) {
            sorted[kept] = sorted[index]
            kept += 1
        }
        sorted.removeLast(sorted.count - kept)
        return sorted
    }

    // MARK: Storage form

    /// The signature as canonical text for a storage key: a JSON array whose first element is the
    /// flags (1 status, 2 header, 4 no difference rows) and whose other elements are the body
    /// pointers in UTF-8 byte order, e.g. `[1,"/items/0/price","/total"]`.
    ///
    /// A pointer may hold any character, a comma or a quote included, so the pointers are not
    /// joined with a separator: JSON string escaping makes the list unambiguous, and sorted,
    /// deduplicated pointers make equal signatures give equal text.
    public var canonicalText: String {
        var text = "[\(flags)"
        for pointer in bodyPointers {
            text += ","
            text += Self.jsonString(pointer)
        }
        return text + "]"
    }

    /// A signature from ``canonicalText``; nil for text that is not one.
    public init?(canonicalText: String) {
        guard let array = try? JSONSerialization.jsonObject(with: Data(canonicalText.utf8)) as? [Any],
            let flags = array.first as? Int, (0...7).contains(flags)
        else { return nil }
        let pointers = array.dropFirst().compactMap { $0 as? String }
        guard pointers.count == array.count - 1 else { return nil }
        self.init(statusDiffers: flags & 1 != 0, headerDiffers: flags & 2 != 0, hasDifferences: flags & 4 == 0, bodyPointers: pointers)
        guard self.canonicalText == canonicalText else { return nil }
    }

    private var flags: Int {
        (statusDiffers ? 1 : 0) | (headerDiffers ? 2 : 0) | (hasDifferences ? 0 : 4)
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, everything else
    /// as is, so the text does not depend on an encoder's choices.
    private static func jsonString(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
