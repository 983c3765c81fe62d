/// Why a request the route would shadow gets no copy, as the skip metric names it. Sampling a
/// request out is not a skip.
enum ShadowSkipReason: String {
    /// A write the route's `shadow.writes` policy keeps away from the other side.
    case writeSkipped = "write_skipped"
    /// The loop already has `maxShadowsPerLoop` copies in flight.
    case concurrency
}
