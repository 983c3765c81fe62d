/// What a route's `match` asks of one header, query parameter or cookie.
///
/// `"X-Channel": "web"` and `"tenant": ["t-17", "t-42"]` are ``oneOf(_:)``;
/// `{"present": true}` is ``present`` and `{"present": false}` is ``absent``. Values compare
/// exactly, byte for byte (query values after percent-decoding); a key that repeats matches when
/// any of its values does.
public enum ValueCondition: Sendable, Hashable {
    /// The key is there with one of these values.
    case oneOf([String])
    /// The key is there, with any value.
    case present
    /// The key is not there.
    case absent

    /// Whether every request this condition accepts, `other` accepts too.
    public func implies(_ other: ValueCondition) -> Bool {
        switch (self, other) {
        case (.absent, .absent), (.present, .present), (.oneOf, .present): true
        case (.oneOf(let mine), .oneOf(let theirs)): mine.allSatisfy(theirs.contains)
        default: false
        }
    }

    /// Whether one request can satisfy both conditions on the same key.
    public func overlaps(_ other: ValueCondition) -> Bool {
        switch (self, other) {
        case (.absent, .absent), (.present, .present), (.present, .oneOf), (.oneOf, .present): true
        case (.absent, _), (_, .absent): false
        case (.oneOf(let mine), .oneOf(let theirs)): mine.contains(where: theirs.contains)
        }
    }
}
