/// How a canary decides, per request, whether the service serves it (README.md, "The route
/// table: `routes.json`", Canary split).
///
/// The sticky key's value is hashed into one of 10,000 buckets; buckets below `percent × 100`
/// go to the service. The same value always lands in the same bucket, so one order's or one
/// customer's calls stay on one side, and raising the percent only moves callers towards the
/// service, never back.
public enum CanarySplit {
    /// Buckets per split: a percent has two decimals of resolution.
    public static let buckets = 10_000

    /// The bucket of a sticky key value (64-bit FNV-1a, then a finalising mix so that keys that
    /// differ only in their last characters spread).
    public static func bucket(of value: some Sequence<UInt8>) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in value {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return Int(hash % UInt64(buckets))
    }

    /// Whether a request in `bucket` goes to the service at `percent` (0–100).
    public static func servesService(bucket: Int, percent: Double) -> Bool {
        Double(bucket) < percent * Double(buckets) / 100
    }

    /// The raw value of the `{name}` segment of `uri`'s path, if the template has it.
    public static func parameter(_ name: String, of template: PathTemplate, uri: String) -> Substring? {
        guard let position = template.segments.firstIndex(of: .param(name)) else { return nil }
        var path = Substring(uri)
        if let query = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = path[..<query] }
        var index = 0
        for part in path.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            if index == position { return part.isEmpty ? nil : part }
            index += 1
        }
        return nil
    }
}
