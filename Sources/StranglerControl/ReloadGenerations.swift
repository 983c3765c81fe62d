/// Which of several overlapping reloads may go live: the latest look at the file wins.
///
/// Each look at the file (a poll that saw it change, SIGHUP, a route controller's write) that
/// finds new content starts a generation, and supersedes every older generation still being
/// validated: validating a large table takes seconds, and an older table must never go live
/// after a newer one. A look that finds the content already on its way waits for that
/// generation instead of starting another. Only the newest generation may go live.
///
/// Pure state: ``RouteTableReloader`` keeps it under a lock, does the work, and installs one
/// generation at a time.
struct ReloadGenerations {
    typealias Generation = UInt64

    /// What a look at the file leads to.
    enum Decision: Equatable {
        /// The content is the live table's: nothing to do.
        case unchanged
        /// The content was rejected before and the look was not forced (SIGHUP forces).
        case rejectedBefore
        /// Validate the content as this new generation.
        case validate(Generation)
        /// The same content is already on its way as this generation: wait for it.
        case join(Generation)
    }

    /// The newest generation handed out; every older one still being validated is superseded.
    private(set) var newest: Generation = 0
    /// The newest generation while it is validated, with its content version.
    private var validating: (generation: Generation, version: String)?
    /// The generation being installed on the event loops, with its content version.
    private var installing: (generation: Generation, version: String)?

    /// What a look at the file that found `version` leads to.
    /// - Parameters:
    ///   - live: the version of the table every event loop serves.
    ///   - rejected: the version of the content last rejected, if any.
    ///   - force: validate content again even if it was rejected before.
    mutating func look(found version: String, live: String, rejected: String?, force: Bool) -> Decision {
        if let validating, validating.version == version {
            return .join(validating.generation)
        }
        // Whatever is being validated now is older than what the file holds.
        newest += 1
        validating = nil
        if let installing {
            if installing.version == version { return .join(installing.generation) }
            // Otherwise even the live content must be installed again, after the one going in.
        } else if version == live {
            return .unchanged
        }
        if !force, version == rejected { return .rejectedBefore }
        validating = (newest, version)
        return .validate(newest)
    }

    /// Whether `generation`, found valid, may go live: only if no later look superseded it. If
    /// so, it is being installed until ``installed(_:)``. Installations do not overlap.
    mutating func mayInstall(_ generation: Generation) -> Bool {
        precondition(installing == nil, "one installation at a time")
        guard generation == newest, let validating, validating.generation == generation else { return false }
        installing = validating
        self.validating = nil
        return true
    }

    /// `generation` is live on every event loop.
    mutating func installed(_ generation: Generation) {
        if installing?.generation == generation { installing = nil }
    }

    /// Whether `generation`, found invalid, is to be reported: only if no later look superseded
    /// it (a rejection of content the file no longer holds would only mislead).
    mutating func mayReject(_ generation: Generation) -> Bool {
        guard generation == newest, let validating, validating.generation == generation else { return false }
        self.validating = nil
        return true
    }
}
