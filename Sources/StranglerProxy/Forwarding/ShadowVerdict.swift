/// What the shadow copy of an exchange, if it has one, is told about the primary: the copy's
/// comparison needs the primary's whole response, so anything short of that ends it unmatched.
///
/// Pure decisions, so that ``ProxyHandler`` only carries them out (``ShadowExchange/primaryEnded()``
/// or ``ShadowExchange/primaryFailed()``, then letting go of the copy).
enum ShadowVerdict: Equatable {
    /// The copy carries on.
    case keep
    /// The primary's response is complete: the copy is compared against it.
    case primaryEnded
    /// The primary did not complete (or can't be compared against): nothing to compare.
    case primaryFailed

    /// The primary's response ended. An answer before the request ended means the copy was
    /// never sent (its request was incomplete): nothing to compare.
    static func atResponseEnd(requestComplete: Bool) -> ShadowVerdict {
        requestComplete ? .primaryEnded : .primaryFailed
    }

    /// The exchange falls back to `legacy`. A copy going to legacy would now compare legacy
    /// with itself, so it is dropped; a copy to anywhere else carries on.
    static func atFallback(candidate: String, legacy: String) -> ShadowVerdict {
        candidate == legacy ? .primaryFailed : .keep
    }
}
