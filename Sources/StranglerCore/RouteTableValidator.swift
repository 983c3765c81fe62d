/// Walks a parsed `routes.json` and collects every problem with its JSON path.
///
/// It keeps going after a problem so that `strangler routes validate` can list all of them at once.
struct RouteTableValidator {
    struct Parts {
        var upstreams: [String: Upstream]
        var defaultUpstream: String
        var routes: [Route]
    }

    /// The first ``RouteTableError/reportedLimit`` problems.
    private(set) var problems: [RouteTableError.Problem] = []
    /// Every problem found, kept or not: a hostile table can have millions.
    private(set) var problemCount = 0
    /// "known: a, b, c", the upstream names a message offers; built once per table.
    private var knownUpstreams = ""
    /// For each element of "routes", the route validated before with identical bytes and
    /// upstreams, if any (see ``RouteTableBasis``): taken as it is, not validated again.
    var reused: [Route?] = []

    /// Longest route id or upstream name: they appear in metrics labels, logs and the store.
    static let maxNameLength = 256
    /// Longest other string (a path, URL, description or pointer).
    static let maxTextLength = 4096
    /// Most methods one route may list: methods are compared pairwise within a route and between
    /// clashing routes, so the count must be bounded.
    static let maxMethods = 32

    static let topKeys: Set<String> = ["upstreams", "defaultUpstream", "routes"]
    static let upstreamKeys: Set<String> = [
        "url", "connectTimeoutMs", "timeoutMs", "maxConnectionsPerLoop", "idleTimeoutMs",
        "caFile", "serverName", "clientCertFile", "clientKeyFile", "insecureSkipVerify",
    ]
    /// The upstream keys that only an `https://` upstream may have.
    static let upstreamTLSKeys = ["caFile", "serverName", "clientCertFile", "clientKeyFile", "insecureSkipVerify"]
    static let routeKeys: Set<String> = [
        "id", "description", "methods", "path", "match", "mode", "legacy", "service", "fallback", "shadow", "canary", "compare", "gate",
    ]
    static let shadowKeys: Set<String> = ["sampleRate", "writes", "timeoutMs"]
    static let canaryKeys: Set<String> = ["percent", "stickyKey"]
    static let compareKeys: Set<String> = [
        "ignore", "headers", "arrays", "numericTolerance", "coerceNumericStrings", "learnNoise", "redact",
    ]
    static let gateKeys: Set<String> = ["minSamples", "maxMismatchRate", "maxErrorRate", "maxLatencyRatio"]

    mutating func problem(_ path: String, _ message: String) {
        problemCount += 1
        if problems.count < RouteTableError.reportedLimit {
            problems.append(.init(path: path, message: message))
        }
    }

    /// The problems found, as the error a rejected table throws.
    var error: RouteTableError {
        RouteTableError(problems: problems, moreProblems: problemCount - problems.count)
    }

    mutating func validate(_ json: JSONValue) -> Parts? {
        guard case .object(let top) = json else {
            problem("$", "the route table must be a JSON object with \"upstreams\", \"defaultUpstream\" and \"routes\"; found \(json.kindName)")
            return nil
        }
        checkKeys(top, allowed: Self.topKeys, at: nil)

        var upstreams: [String: Upstream] = [:]
        switch top["upstreams"] {
        case .object(let entries)?:
            if entries.isEmpty { problem("upstreams", "declare at least one upstream") }
            for name in entries.keys.sorted() {
                if let upstream = validateUpstream(name: name, entries[name]!, at: Self.join("upstreams", name)) {
                    upstreams[name] = upstream
                }
            }
        case nil: problem("upstreams", "missing; declare the backends, e.g. {\"legacy\": {\"url\": \"http://127.0.0.1:9000\"}}")
        case let other?: problem("upstreams", "must be an object of name → {\"url\": ...}; found \(other.kindName)")
        }
        knownUpstreams = Self.list(upstreams.keys.sorted())
        let known = knownUpstreams

        var defaultUpstream = ""
        switch top["defaultUpstream"] {
        case .string(let name)?:
            defaultUpstream = name
            if upstreams[name] == nil, !upstreams.isEmpty {
                problem("defaultUpstream", "unknown upstream \(Self.shown(name)); known: \(known)")
            }
        case nil: problem("defaultUpstream", "missing; name the upstream that takes unmatched requests (usually \"legacy\")")
        case let other?: problem("defaultUpstream", "must be a string naming an upstream; found \(other.kindName)")
        }

        var routes: [Route] = []
        switch top["routes"] {
        case .array(let entries)?:
            var seenIDs: [String: Int] = [:]
            var indexed: [(index: Int, route: Route)] = []
            for (index, entry) in entries.enumerated() {
                let route: Route
                if index < reused.count, let known = reused[index] {
                    route = known
                } else if let validated = validateRoute(entry, at: "routes[\(index)]", upstreams: upstreams, defaultUpstream: defaultUpstream) {
                    route = validated
                } else {
                    continue
                }
                if let first = seenIDs[route.id] {
                    problem("routes[\(index)].id", "duplicate id \(Self.shown(route.id)); routes[\(first)] has it already")
                } else {
                    seenIDs[route.id] = index
                }
                routes.append(route)
                indexed.append((index, route))
            }
            checkAmbiguity(indexed)
            checkUnverifiedShadowTargets(upstreams: upstreams, defaultUpstream: defaultUpstream, routes: indexed)
        case nil: problem("routes", "missing; use [] for a table that sends everything to defaultUpstream")
        case let other?: problem("routes", "must be an array of route objects; found \(other.kindName)")
        }
        return Parts(upstreams: upstreams, defaultUpstream: defaultUpstream, routes: routes)
    }

    // MARK: - Upstreams

    private mutating func validateUpstream(name: String, _ json: JSONValue, at path: String) -> Upstream? {
        guard case .object(let fields) = json else {
            problem(path, "must be an object like {\"url\": \"http://127.0.0.1:9000\"}; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.upstreamKeys, at: path)
        if name.utf8.count > Self.maxNameLength {
            problem(path, "the upstream name is \(name.utf8.count) bytes long; at most \(Self.maxNameLength)")
        } else if !Self.isIdentifier(name) {
            problem(path, "upstream names use letters, digits, \"-\", \"_\" and \".\"")
        }
        guard let urlText = requireString(fields, "url", at: path) else { return nil }
        guard let parsed = UpstreamURL.parse(urlText) else {
            problem("\(path).url", "\(Self.shown(urlText)) is not an http URL with a host, e.g. \"http://127.0.0.1:9000\"")
            return nil
        }
        if case .failure(let reason) = parsed {
            problem("\(path).url", "\(Self.shown(urlText)): \(reason)")
            return nil
        }
        guard case .success(let url) = parsed else { return nil }
        var upstream = Upstream(name: name, url: urlText, host: url.host, port: url.port, basePath: url.basePath)
        if url.isTLS {
            upstream.tls = validateTLS(fields, at: path)
        } else {
            for key in Self.upstreamTLSKeys where fields[key] != nil {
                problem("\(path).\(key)", "applies to https upstreams only; this upstream's url is http://")
            }
        }
        if let value = positiveInt(fields, "connectTimeoutMs", at: path) { upstream.connectTimeoutMs = value }
        if let value = positiveInt(fields, "timeoutMs", at: path) { upstream.timeoutMs = value }
        if let value = positiveInt(fields, "maxConnectionsPerLoop", at: path) { upstream.maxConnectionsPerLoop = value }
        if let value = positiveInt(fields, "idleTimeoutMs", at: path) { upstream.idleTimeoutMs = value }
        return upstream
    }

    /// The TLS settings of an `https://` upstream. Whether the files exist and parse is checked
    /// where they are read (the proxy resolves relative paths against the route table's folder).
    private mutating func validateTLS(_ fields: [String: JSONValue], at path: String) -> UpstreamTLS {
        var tls = UpstreamTLS()
        tls.caFile = optionalString(fields, "caFile", at: path)
        tls.clientCertFile = optionalString(fields, "clientCertFile", at: path)
        tls.clientKeyFile = optionalString(fields, "clientKeyFile", at: path)
        tls.insecureSkipVerify = optionalBool(fields, "insecureSkipVerify", at: path) ?? false
        if let name = optionalString(fields, "serverName", at: path, maxLength: 253) {
            if UpstreamTLS.isIPAddress(name) {
                problem(
                    "\(path).serverName",
                    "\(Self.shown(name)) is an IP address, which SNI cannot carry; leave serverName out to verify the certificate's IP addresses"
                )
            } else if !name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(Self.isHostLabel) {
                problem("\(path).serverName", "\(Self.shown(name)) is not a host name (letters, digits and \"-\" in dot-separated labels)")
            } else {
                tls.serverName = name
            }
        }
        switch (tls.clientCertFile, tls.clientKeyFile) {
        case (_?, nil): problem("\(path).clientKeyFile", "missing; clientCertFile needs the private key that goes with it")
        case (nil, _?): problem("\(path).clientCertFile", "missing; clientKeyFile needs the certificate that goes with it")
        default: break
        }
        if tls.insecureSkipVerify, tls.caFile != nil {
            problem("\(path).caFile", "has no effect with insecureSkipVerify, which trusts any certificate; remove one of them")
        }
        return tls
    }

    /// Refuses `insecureSkipVerify` on an upstream that only ever gets shadow copies: copies of
    /// live requests would go to a peer nobody verified, and nobody would notice, since no
    /// client sees a shadow's answer. Skipping verification is for an upstream whose callers
    /// see what it does.
    private mutating func checkUnverifiedShadowTargets(upstreams: [String: Upstream], defaultUpstream: String, routes: [(index: Int, route: Route)]) {
        let unverified = Set(upstreams.filter { $0.value.tls?.insecureSkipVerify == true }.keys).subtracting([defaultUpstream])
        guard !unverified.isEmpty else { return }
        // Who serves clients and who only gets copies, by the rules the proxy routes with.
        var live: Set<String> = []
        var shadowedBy: [String: Int] = [:]
        for (index, route) in routes {
            live.insert(route.primaryUpstream)
            var copies: [String] = []
            switch route.mode {
            case .legacy, .retired: break
            case .shadow: copies = route.service.map { [$0] } ?? []
            case .canary:
                // Either side may serve a request, so both are live.
                if let service = route.service { live.insert(service) }
                live.insert(route.legacy)
            case .service:
                if route.fallsBackToLegacy { live.insert(route.legacy) }
                if route.shadow != nil { copies = [route.legacy] }
            }
            for name in copies where shadowedBy[name] == nil { shadowedBy[name] = index }
        }
        for name in unverified.sorted() where !live.contains(name) {
            if let index = shadowedBy[name] {
                problem(
                    Self.join(Self.join("upstreams", name), "insecureSkipVerify"),
                    "routes[\(index)] sends this upstream only shadow copies of live requests, which must not go to an unverified peer; add its CA with caFile instead"
                )
            }
        }
    }

    private static func isHostLabel(_ label: Substring) -> Bool {
        !label.isEmpty && label.count <= 63 && label.first != "-" && label.last != "-"
            && label.unicodeScalars.allSatisfy { CharacterSetASCII.isAlnum($0) || $0 == "-" }
    }

    // MARK: - Routes

    private mutating func validateRoute(
        _ json: JSONValue,
        at path: String,
        upstreams: [String: Upstream],
        defaultUpstream: String
    ) -> Route? {
        guard case .object(let fields) = json else {
            problem(path, "must be a route object with \"id\", \"path\" and \"mode\"; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.routeKeys, at: path)
        let known = knownUpstreams
        let before = problemCount

        let id = requireString(fields, "id", at: path, maxLength: Self.maxNameLength) ?? ""
        if !id.isEmpty, !Self.isIdentifier(id) {
            problem("\(path).id", "\(Self.shown(id)) may use only letters, digits, \"-\", \"_\" and \".\"")
        }
        _ = optionalString(fields, "description", at: path)

        var template: PathTemplate?
        if let text = requireString(fields, "path", at: path) {
            if let bad = text.unicodeScalars.first(where: { $0.value <= 0x20 || $0.value == 0x7F }) {
                problem(
                    "\(path).path",
                    "\(Self.shown(text)) has \(bad == " " ? "a space" : "a control character"), which no request path can hold; percent-encode it (\(Self.percentEncoded(bad)))"
                )
            } else {
                switch PathTemplate.parse(text) {
                case .success(let parsed): template = parsed
                case .failure(let error): problem("\(path).path", "\(Self.shown(text)) \(error.description)")
                }
            }
        }

        var methods: [String] = []
        switch fields["methods"] {
        case nil: break
        case .array(let items)? where items.count > Self.maxMethods:
            problem("\(path).methods", "lists \(items.count) methods; at most \(Self.maxMethods)")
        case .array(let items)?:
            for (index, item) in items.enumerated() {
                guard case .string(let method) = item, !method.isEmpty, method.utf8.count <= 32, method.allSatisfy(Self.isTokenCharacter) else {
                    problem("\(path).methods[\(index)]", "must be an HTTP method name such as \"GET\"")
                    continue
                }
                let upper = method.uppercased()
                if !methods.contains(upper) { methods.append(upper) }
            }
            if items.isEmpty { problem("\(path).methods", "is empty; leave \"methods\" out to take every method") }
        case let other?: problem("\(path).methods", "must be an array such as [\"GET\", \"HEAD\"]; found \(other.kindName)")
        }

        var match = RouteMatch()
        if let json = fields["match"] {
            let parsed = RouteMatch.parse(json, at: "\(path).match")
            for found in parsed.problems { problem(found.path, found.message) }
            if let predicates = parsed.match { match = predicates }
        }

        var mode = RouteMode.legacy
        switch fields["mode"] {
        case .string(let text)?:
            if let parsed = RouteMode(rawValue: text) {
                mode = parsed
            } else {
                problem("\(path).mode", "unknown mode \(Self.shown(text)); one of: \(RouteMode.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        case nil: problem("\(path).mode", "missing; one of: \(RouteMode.allCases.map(\.rawValue).joined(separator: ", "))")
        case let other?: problem("\(path).mode", "must be a string; found \(other.kindName)")
        }

        var legacy = defaultUpstream
        if let name = optionalString(fields, "legacy", at: path) {
            legacy = name
            if upstreams[name] == nil { problem("\(path).legacy", "unknown upstream \(Self.shown(name)); known: \(known)") }
        }
        let service = optionalString(fields, "service", at: path)
        if let service, upstreams[service] == nil {
            problem("\(path).service", "unknown upstream \(Self.shown(service)); known: \(known)")
        }
        if mode != .legacy, service == nil, fields["service"] == nil {
            problem("\(path).service", "mode \"\(mode.rawValue)\" needs a \"service\" upstream; known: \(known)")
        }
        if let service, service == legacy {
            problem("\(path).service", "\(Self.shown(service)) is also this route's legacy upstream; a service must be a different upstream")
        }
        let fallback = optionalBool(fields, "fallback", at: path) ?? false

        let shadow = fields["shadow"].flatMap { validateShadow($0, at: "\(path).shadow") }
        let canary = fields["canary"].flatMap { validateCanary($0, at: "\(path).canary", template: template) }
        if mode == .canary, canary == nil, fields["canary"] == nil {
            problem("\(path).canary", "mode \"canary\" needs {\"percent\": N} (0–100)")
        }
        let compare = fields["compare"].flatMap { validateCompare($0, at: "\(path).compare") }
        let gate = fields["gate"].flatMap { validateGate($0, at: "\(path).gate") }

        guard problemCount == before, let template else { return nil }
        return Route(
            id: id,
            methods: methods,
            path: template,
            match: match,
            mode: mode,
            legacy: legacy,
            service: service,
            fallback: fallback,
            shadow: shadow,
            canary: canary,
            compare: compare,
            gate: gate
        )
    }

    private mutating func validateShadow(_ json: JSONValue, at path: String) -> ShadowSettings? {
        guard case .object(let fields) = json else {
            problem(path, "must be an object like {\"sampleRate\": 1.0, \"writes\": \"skip\"}; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.shadowKeys, at: path)
        var settings = ShadowSettings()
        if let rate = optionalNumber(fields, "sampleRate", at: path) {
            if rate < 0 || rate > 1 { problem("\(path).sampleRate", "must be between 0 and 1; found \(rate)") }
            settings.sampleRate = rate
        }
        settings.timeoutMs = positiveInt(fields, "timeoutMs", at: path)
        if let text = optionalString(fields, "writes", at: path) {
            if let writes = ShadowWrites(rawValue: text) {
                settings.writes = writes
            } else {
                problem("\(path).writes", "unknown value \(Self.shown(text)); one of: skip, dry-run, mirror")
            }
        }
        return settings
    }

    private mutating func validateCanary(_ json: JSONValue, at path: String, template: PathTemplate?) -> CanarySettings? {
        guard case .object(let fields) = json else {
            problem(path, "must be an object like {\"percent\": 10, \"stickyKey\": \"header:X-Customer-Id\"}; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.canaryKeys, at: path)
        guard let percent = optionalNumber(fields, "percent", at: path) else {
            if fields["percent"] == nil { problem("\(path).percent", "missing; a number from 0 to 100") }
            return nil
        }
        if percent < 0 || percent > 100 { problem("\(path).percent", "must be between 0 and 100; found \(percent)") }
        var settings = CanarySettings(percent: percent)
        if let text = optionalString(fields, "stickyKey", at: path) {
            if text.hasPrefix("header:"), text.count > 7 {
                let name = String(text.dropFirst(7))
                // The data plane drops such request headers (as nginx does), so the key would
                // never be found and the split would silently be random.
                if name.utf8.contains(UInt8(ascii: "_")) {
                    let hyphenated = String(name.map { $0 == "_" ? "-" : $0 })
                    problem(
                        "\(path).stickyKey",
                        "header \(Self.shown(name)) has an underscore; the proxy drops request headers whose names have one, so use \"\(hyphenated)\""
                    )
                }
                settings.stickyKey = .header(name)
            } else if text.hasPrefix("param:"), text.count > 6 {
                let name = String(text.dropFirst(6))
                if let template, !template.parameterNames.contains(name) {
                    problem("\(path).stickyKey", "path \(Self.shown(template.description)) has no parameter \(Self.shown("{" + name + "}"))")
                }
                settings.stickyKey = .param(name)
            } else {
                problem("\(path).stickyKey", "\(Self.shown(text)) must be \"header:NAME\" or \"param:NAME\"")
            }
        }
        return settings
    }

    private mutating func validateCompare(_ json: JSONValue, at path: String) -> CompareSettings? {
        guard case .object(let fields) = json else {
            problem(path, "must be an object of comparison rules; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.compareKeys, at: path)
        var settings = CompareSettings()
        settings.ignore = pointerList(fields, "ignore", at: path)
        settings.redact = pointerList(fields, "redact", at: path)
        settings.headers = stringList(fields, "headers", at: path).map { $0.lowercased() }
        if let value = optionalNumber(fields, "numericTolerance", at: path) {
            if value < 0 { problem("\(path).numericTolerance", "must not be negative; found \(value)") }
            settings.numericTolerance = value
        }
        settings.coerceNumericStrings = optionalBool(fields, "coerceNumericStrings", at: path) ?? false
        settings.learnNoise = optionalBool(fields, "learnNoise", at: path) ?? false
        switch fields["arrays"] {
        case nil: break
        case .object(let entries)?:
            for pointer in entries.keys.sorted() {
                let entryPath = "\(path).arrays[\(Self.shown(pointer))]"
                if !Self.isPointer(pointer) { problem(entryPath, "\(Self.shown(pointer)) is not a JSON pointer (it must start with \"/\")") }
                guard case .object(let spec) = entries[pointer]!, case .string(let key)? = spec["key"], !key.isEmpty else {
                    problem(entryPath, "must be {\"key\": \"FIELD\"}")
                    continue
                }
                checkKeys(spec, allowed: ["key"], at: entryPath)
                settings.arrays[pointer] = key
            }
        case let other?: problem("\(path).arrays", "must be an object of pointer → {\"key\": FIELD}; found \(other.kindName)")
        }
        return settings
    }

    private mutating func validateGate(_ json: JSONValue, at path: String) -> GateSettings? {
        guard case .object(let fields) = json else {
            problem(path, "must be an object like {\"minSamples\": 500, \"maxMismatchRate\": 0.001}; found \(json.kindName)")
            return nil
        }
        checkKeys(fields, allowed: Self.gateKeys, at: path)
        var gate = GateSettings()
        gate.minSamples = positiveInt(fields, "minSamples", at: path)
        if let rate = optionalNumber(fields, "maxMismatchRate", at: path) {
            if rate < 0 || rate > 1 { problem("\(path).maxMismatchRate", "must be between 0 and 1; found \(rate)") }
            gate.maxMismatchRate = rate
        }
        if let rate = optionalNumber(fields, "maxErrorRate", at: path) {
            if rate < 0 || rate > 1 { problem("\(path).maxErrorRate", "must be between 0 and 1; found \(rate)") }
            gate.maxErrorRate = rate
        }
        if let ratio = optionalNumber(fields, "maxLatencyRatio", at: path) {
            if ratio <= 0 { problem("\(path).maxLatencyRatio", "must be greater than 0; found \(ratio)") }
            gate.maxLatencyRatio = ratio
        }
        return gate
    }

    // MARK: - Ambiguity

    /// Two routes with the same template shape and a shared method would match the same requests
    /// with equal specificity: nothing could decide between them, unless their predicates do.
    ///
    /// Routes without `match` are checked against the routes of their shape that came before
    /// them, through the first route to claim each method there, so the check is linear in the
    /// table. A route that clashes is reported once, with the first route it clashes with: a
    /// table of 2,000 copies of one route has 1,999 problems, not 1,999,000 pairs.
    ///
    /// A route with predicates wins over one without, so it is only checked against the other
    /// routes with predicates of its shape (``checkPredicateAmbiguity(_:)``).
    private mutating func checkAmbiguity(_ routes: [(index: Int, route: Route)]) {
        /// The first route (by position in `routes`) of one shape, and the first per method.
        struct Claims {
            var first: Int
            var anyMethod: Int?
            var byMethod: [String: Int] = [:]
        }
        // Claims live in an array and are changed in place: a copy out of a dictionary and back
        // copied each shape's method table once per route.
        var byShape: [String: Int] = [:]
        byShape.reserveCapacity(routes.count)
        var claimsByShape: [Claims] = []
        var predicated: [Int] = []
        for position in routes.indices {
            let route = routes[position].route
            guard route.match.isEmpty else {
                predicated.append(position)
                continue
            }
            let shape = route.path.shape
            guard let slot = byShape[shape] else {
                var claims = Claims(first: position)
                claim(&claims, position, route)
                byShape[shape] = claimsByShape.count
                claimsByShape.append(claims)
                continue
            }
            var clash: Int?
            if route.methods.isEmpty {
                clash = claimsByShape[slot].first
            } else {
                clash = claimsByShape[slot].anyMethod
                for method in route.methods {
                    if let other = claimsByShape[slot].byMethod[method], other < clash ?? .max { clash = other }
                }
            }
            if let clash {
                let index = routes[position].index
                let (otherIndex, other) = routes[clash]
                problem(
                    "routes[\(index)].path",
                    "\(Self.shown(route.path.description)) is ambiguous with routes[\(otherIndex)] (\(Self.shown(other.id)): \(Self.shown(other.path.description))) for \(Self.sharedMethods(route, other)); make one more specific or split the methods"
                )
            }
            claim(&claimsByShape[slot], position, route)
        }
        if !predicated.isEmpty { checkPredicateAmbiguity(predicated.map { routes[$0] }) }

        func claim(_ claims: inout Claims, _ position: Int, _ route: Route) {
            if route.methods.isEmpty {
                if claims.anyMethod == nil { claims.anyMethod = position }
            }
            for method in route.methods where claims.byMethod[method] == nil {
                claims.byMethod[method] = position
            }
        }
    }

    /// Among routes with predicates of one shape, sharing a method: one whose predicates are a
    /// strict superset of the other's wins; otherwise, when one request could satisfy both, they
    /// are ambiguous. Each route is compared with the earlier ones of its shape, so the cost is
    /// quadratic in the predicated routes that share one path shape (a table with a route per
    /// tenant on one path), and linear in the rest of the table.
    private mutating func checkPredicateAmbiguity(_ routes: [(index: Int, route: Route)]) {
        var byShape: [String: [Int]] = [:]
        for position in routes.indices { byShape[routes[position].route.path.shape, default: []].append(position) }
        var clashes: [(position: Int, other: Int)] = []
        for positions in byShape.values where positions.count > 1 {
            // Two routes that list values for one key, none in common, cannot both hold. So the
            // earlier routes of the shape are indexed by each key they list values for, and a
            // route is paired only with those sharing a value on its most selective such key,
            // and with those that list none for that key. A route per tenant on one path is then
            // checked in linear time.
            var keyed: [Discriminator: (count: Int, byValue: [String: [Int]])] = [:]
            var keysOf: [Int: [Discriminator: [String]]] = [:]
            var earlier: [Int] = []
            for position in positions {
                let route = routes[position].route
                let keys = Discriminator.keys(of: route.match)
                var candidates: [Int]
                if let best = keys.min(by: { Self.pairings($0, keyed, earlier.count) < Self.pairings($1, keyed, earlier.count) }) {
                    candidates = best.values.flatMap { keyed[best.key]?.byValue[$0] ?? [] }
                    if earlier.count > keyed[best.key]?.count ?? 0 {
                        candidates += earlier.filter { keysOf[$0]?[best.key] == nil }
                    }
                } else {
                    candidates = earlier
                }
                let clash = candidates.filter { other in
                    let other = routes[other].route
                    return Self.shareMethod(route, other, headFromGet: true) && route.match.overlaps(other.match)
                        && !route.match.isStrictlyMoreSpecific(than: other.match) && !other.match.isStrictlyMoreSpecific(than: route.match)
                }.min()
                if let clash { clashes.append((position, clash)) }
                for (key, values) in keys {
                    keyed[key, default: (0, [:])].count += 1
                    for value in values { keyed[key, default: (0, [:])].byValue[value, default: []].append(position) }
                }
                keysOf[position] = Dictionary(keys.map { ($0.key, $0.values) }, uniquingKeysWith: { first, _ in first })
                earlier.append(position)
            }
        }
        // In table order, whatever order the shapes were visited in.
        for (position, clash) in clashes.sorted(by: { $0.position < $1.position }) {
            let (index, route) = routes[position]
            let (otherIndex, other) = routes[clash]
            let how =
                route.match.implies(other.match) && other.match.implies(route.match)
                ? "have the same predicates"
                : "have predicates one request can satisfy together, and neither's contain the other's"
            problem(
                "routes[\(index)].match",
                "routes[\(index)] (\(Self.shown(route.id))) and routes[\(otherIndex)] (\(Self.shown(other.id))) take \(Self.shown(route.path.description)) for \(Self.sharedMethods(route, other, headFromGet: true)) and \(how), so nothing decides between them; add the other's predicates to one, or make a predicate exclude the other (a different value, or {\"present\": false})"
            )
        }
    }

    /// A route's first header, query or cookie condition that lists values: the key the
    /// ambiguity check indexes its routes by.
    private struct Discriminator: Hashable {
        /// 0 for a header, 1 for a query parameter, 2 for a cookie; and the name.
        var kind: Int
        var name: String

        /// Each header, query or cookie key the predicates list values for, with the values.
        static func keys(of match: RouteMatch) -> [(key: Discriminator, values: [String])] {
            var keys: [(key: Discriminator, values: [String])] = []
            for (kind, conditions) in [match.headers, match.query, match.cookies].enumerated() {
                for condition in conditions {
                    if case .oneOf(let values) = condition.value { keys.append((Discriminator(kind: kind, name: condition.name), values)) }
                }
            }
            return keys
        }
    }

    /// How many earlier routes a route would be paired with through `key`: those sharing one of
    /// its values there, and those listing no values for the key.
    private static func pairings(
        _ key: (key: Discriminator, values: [String]),
        _ keyed: [Discriminator: (count: Int, byValue: [String: [Int]])],
        _ earlier: Int
    ) -> Int {
        let entry = keyed[key.key]
        return earlier - (entry?.count ?? 0) + key.values.reduce(0) { $0 + (entry?.byValue[$1]?.count ?? 0) }
    }

    /// Whether two routes take a method in common (no `methods` takes every one). With
    /// `headFromGet`, a route that lists GET takes HEAD too, as the matcher routes it: a GET
    /// route's predicates rank against a HEAD route's for HEAD requests.
    private static func shareMethod(_ route: Route, _ other: Route, headFromGet: Bool = false) -> Bool {
        route.methods.isEmpty || other.methods.isEmpty || taken(route, headFromGet).contains(where: taken(other, headFromGet).contains)
    }

    /// The methods a route lists, with HEAD for one that lists GET when `headFromGet`.
    private static func taken(_ route: Route, _ headFromGet: Bool) -> [String] {
        headFromGet && route.methods.contains("GET") && !route.methods.contains("HEAD") ? route.methods + ["HEAD"] : route.methods
    }

    /// The methods two routes share, for a message: "GET, HEAD" or "every method". With
    /// `headFromGet`, as in ``shareMethod(_:_:headFromGet:)``.
    private static func sharedMethods(_ route: Route, _ other: Route, headFromGet: Bool = false) -> String {
        switch (route.methods.isEmpty, other.methods.isEmpty) {
        case (true, true): return "every method"
        case (true, false): return other.methods.joined(separator: ", ")
        case (false, true): return route.methods.joined(separator: ", ")
        case (false, false): return taken(route, headFromGet).filter(taken(other, headFromGet).contains).joined(separator: ", ")
        }
    }

    // MARK: - Showing values

    /// `text` as a JSON string literal for a message: control characters escaped, and cut at 64
    /// characters, so that a hostile value can neither flood a log nor drive a terminal.
    static func shown(_ text: String) -> String {
        let limit = 64
        var cut = Substring(text)
        var suffix = ""
        if text.utf8.count > limit {
            // Cut by scalars, not characters: one character may hold a million combining marks.
            var scalars = String.UnicodeScalarView()
            var bytes = 0
            for scalar in text.unicodeScalars {
                bytes += UTF8.width(scalar)
                if bytes > limit { break }
                scalars.append(scalar)
            }
            cut = Substring(String(scalars))
            suffix = "… (\(text.utf8.count) bytes)"
        }
        var quoted = ""
        // JSON escapes only C0 controls; what else a terminal acts on, or what reorders a log
        // line (``TerminalText``'s set), is escaped the same way.
        for scalar in JSONDocument.quoted(String(cut)).unicodeScalars {
            if TerminalText.isUnsafe(scalar) {
                let hex = String(scalar.value, radix: 16)
                quoted += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                quoted.unicodeScalars.append(scalar)
            }
        }
        return quoted + suffix
    }

    /// `parent.key` for a plain key, else `parent["key"]`, shown safely.
    static func join(_ parent: String?, _ key: String) -> String {
        let plain = key.utf8.count <= 64 && isIdentifier(key) && !key.utf8.contains(UInt8(ascii: "."))
        guard let parent else { return plain ? key : "$[\(shown(key))]" }
        return plain ? "\(parent).\(key)" : "\(parent)[\(shown(key))]"
    }

    /// Up to 20 names, then how many more.
    static func list(_ names: [String]) -> String {
        let shownNames = names.prefix(20).map { isIdentifier($0) && $0.utf8.count <= 64 ? $0 : shown($0) }
        let more = names.count > 20 ? ", and \(names.count - 20) more" : ""
        return shownNames.joined(separator: ", ") + more
    }

    /// `%0D` for a carriage return.
    static func percentEncoded(_ scalar: Unicode.Scalar) -> String {
        let hex = String(scalar.value, radix: 16, uppercase: true)
        return "%" + (hex.count < 2 ? "0" : "") + hex
    }

    // MARK: - Field helpers

    private mutating func checkKeys(_ fields: [String: JSONValue], allowed: Set<String>, at path: String?) {
        for key in fields.keys.sorted() where !allowed.contains(key) {
            problem(Self.join(path, key), "unknown key \(Self.shown(key)); allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    private mutating func requireString(
        _ fields: [String: JSONValue],
        _ key: String,
        at path: String,
        maxLength: Int = maxTextLength
    ) -> String? {
        switch fields[key] {
        case .string(let value)? where !value.isEmpty:
            guard value.utf8.count <= maxLength else {
                problem("\(path).\(key)", "is \(value.utf8.count) bytes long; at most \(maxLength)")
                return nil
            }
            return value
        case .string?: problem("\(path).\(key)", "must not be empty")
        case nil: problem("\(path).\(key)", "missing")
        case let other?: problem("\(path).\(key)", "must be a string; found \(other.kindName)")
        }
        return nil
    }

    private mutating func optionalString(
        _ fields: [String: JSONValue],
        _ key: String,
        at path: String,
        maxLength: Int = maxTextLength
    ) -> String? {
        guard fields[key] != nil else { return nil }
        return requireString(fields, key, at: path, maxLength: maxLength)
    }

    private mutating func optionalBool(_ fields: [String: JSONValue], _ key: String, at path: String) -> Bool? {
        switch fields[key] {
        case nil: return nil
        case .bool(let value)?: return value
        case let other?:
            problem("\(path).\(key)", "must be true or false; found \(other.kindName)")
            return nil
        }
    }

    private mutating func optionalNumber(_ fields: [String: JSONValue], _ key: String, at path: String) -> Double? {
        switch fields[key] {
        case nil: return nil
        case .number(let value)? where value.isFinite: return value
        case .number?:
            // 1e400 reads as infinity, which every range check below would let through.
            problem("\(path).\(key)", "is out of range; write a number as it is meant")
            return nil
        case let other?:
            problem("\(path).\(key)", "must be a number; found \(other.kindName)")
            return nil
        }
    }

    private mutating func positiveInt(_ fields: [String: JSONValue], _ key: String, at path: String) -> Int? {
        guard let value = optionalNumber(fields, key, at: path) else { return nil }
        guard value.rounded() == value, value >= 1, value <= 1e9 else {
            problem("\(path).\(key)", "must be a whole number from 1 to 1000000000; found \(value)")
            return nil
        }
        return Int(value)
    }

    private mutating func stringList(_ fields: [String: JSONValue], _ key: String, at path: String) -> [String] {
        switch fields[key] {
        case nil: return []
        case .array(let items)?:
            var result: [String] = []
            for (index, item) in items.enumerated() {
                if case .string(let text) = item, text.utf8.count > Self.maxTextLength {
                    problem("\(path).\(key)[\(index)]", "is \(text.utf8.count) bytes long; at most \(Self.maxTextLength)")
                } else if case .string(let text) = item, !text.isEmpty {
                    result.append(text)
                } else {
                    problem("\(path).\(key)[\(index)]", "must be a non-empty string; found \(item.kindName)")
                }
            }
            return result
        case let other?:
            problem("\(path).\(key)", "must be an array of strings; found \(other.kindName)")
            return []
        }
    }

    private mutating func pointerList(_ fields: [String: JSONValue], _ key: String, at path: String) -> [String] {
        let list = stringList(fields, key, at: path)
        for (index, pointer) in list.enumerated() where !Self.isPointer(pointer) {
            problem(
                "\(path).\(key)[\(index)]",
                "\(Self.shown(pointer)) is not a JSON pointer (RFC 6901 pointers start with \"/\", \"*\" matches one segment)"
            )
        }
        return list
    }

    static func isPointer(_ text: String) -> Bool { text.hasPrefix("/") }

    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty
            && text.unicodeScalars.allSatisfy { scalar in
                (scalar.isASCII && (CharacterSetASCII.isAlnum(scalar) || scalar == "-" || scalar == "_" || scalar == "."))
            }
    }

    static func isTokenCharacter(_ character: Character) -> Bool {
        guard let ascii = character.asciiValue, ascii > 32, ascii < 127 else { return false }
        return !"()<>@,;:\\\"/[]?={}".contains(character)
    }
}

enum CharacterSetASCII {
    static func isAlnum(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}
