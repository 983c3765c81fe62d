import Foundation

/// The OpenAPI 3.1 description of the admin API, served at `/openapi.json`.
///
/// Its paths come from ``AdminEndpoint`` (the one definition the router and the CLI's client
/// use too), each with its operation here. A test sends every documented request and checks
/// each answer against the schema named here, so the two can't drift apart silently.
enum AdminOpenAPI {
    /// The whole document.
    static let document: String = {
        var paths: [String] = []
        for endpoint in AdminEndpoint.all {
            paths.append("\"\(endpoint.template)\": { \"\(endpoint.method.rawValue.lowercased())\": \(operations[endpoint] ?? "{}") }")
        }
        for asset in DashboardAssets.all {
            paths.append("\"\(asset.path)\": { \"get\": \(dashboardOperations[asset.path] ?? "{}") }")
        }
        return String(head.dropLast(2)) + ",\n  \"paths\": {\n    " + paths.joined(separator: ",\n    ") + "\n  }\n}\n"
    }()

    /// Every documented endpoint's operation: summary, parameters, request body and answers.
    static let operations: [AdminEndpoint: String] = [
        .health: #"""
        { "summary": "Liveness", "responses": { "200": { "description": "Up.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } } } }
        """#,
        .ready: #"""
        { "summary": "Readiness: the proxy listener is bound", "responses": {
        "200": { "description": "Ready.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } },
        "503": { "description": "Starting.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } } } } }
        """#,
        .metrics: #"""
        { "summary": "Prometheus metrics", "responses": { "200": { "description": "Text exposition format.", "content": { "text/plain": { "schema": { "type": "string" } } } } } }
        """#,
        .openAPI: #"""
        { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1.", "content": { "application/json": { "schema": { "type": "object" } } } } } }
        """#,
        .report: #"""
        { "summary": "The diff report", "security": [{ "bearer": [] }],
        "parameters": [
          { "name": "since", "in": "query", "required": false, "schema": { "type": "string", "default": "24h" }, "description": "A duration back from now (15m, 24h, 7d) or an ISO 8601 time." },
          { "name": "route", "in": "query", "required": false, "schema": { "type": "string" }, "description": "Only this route; repeatable." },
          { "name": "examples", "in": "query", "required": false, "schema": { "type": "integer", "default": 3 }, "description": "Examples per top pointer, 0-10." }
        ],
        "responses": {
          "200": { "description": "The report.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Report" } } } },
          "400": { "$ref": "#/components/responses/BadRequest" }, "401": { "$ref": "#/components/responses/Unauthorized" } } }
        """#,
        .routes: #"""
        { "summary": "The live route table", "security": [{ "bearer": [] }], "responses": {
        "200": { "description": "The table.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/LiveTable" } } } },
        "401": { "$ref": "#/components/responses/Unauthorized" }, "403": { "$ref": "#/components/responses/Forbidden" } } }
        """#,
        .route: #"""
        { "summary": "One live route", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }], "responses": {
        "200": { "description": "The route.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Route" } } } },
        "404": { "$ref": "#/components/responses/NotFound" } } }
        """#,
        .stats: #"""
        { "summary": "Every route of the file with its evidence and gate verdict", "security": [{ "bearer": [] }], "responses": {
        "200": { "description": "Per route.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RouteStatusList" } } } } } }
        """#,
        .routeStats: #"""
        { "summary": "A route's evidence, gate verdict and traffic", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }], "responses": {
        "200": { "description": "The route's status.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RouteStatus" } } } },
        "404": { "$ref": "#/components/responses/NotFound" } } }
        """#,
        .changes: #"""
        { "summary": "The audit trail, newest first", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/limit" }], "responses": {
        "200": { "description": "Changes.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ChangeList" } } } }, "400": { "$ref": "#/components/responses/BadRequest" } } }
        """#,
        .routeChanges: #"""
        { "summary": "One route's audit trail, newest first", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }, { "$ref": "#/components/parameters/limit" }], "responses": {
        "200": { "description": "Changes.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ChangeList" } } } }, "400": { "$ref": "#/components/responses/BadRequest" } } }
        """#,
        .setMode: #"""
        { "summary": "Set a route's mode (and canary share), with the gates", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }],
        "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ModeRequest" } } } },
        "responses": { "200": { "$ref": "#/components/responses/Operation" }, "400": { "$ref": "#/components/responses/BadRequest" },
          "401": { "$ref": "#/components/responses/Unauthorized" }, "403": { "$ref": "#/components/responses/Forbidden" },
          "404": { "$ref": "#/components/responses/NotFound" }, "409": { "$ref": "#/components/responses/Conflict" }, "422": { "$ref": "#/components/responses/Unprocessable" } } }
        """#,
        .promote: #"""
        { "summary": "One step along legacy → shadow → canary → service → retired, with the gates", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }],
        "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/StepRequest" } } } },
        "responses": { "200": { "$ref": "#/components/responses/Operation" }, "400": { "$ref": "#/components/responses/BadRequest" },
          "401": { "$ref": "#/components/responses/Unauthorized" }, "403": { "$ref": "#/components/responses/Forbidden" },
          "404": { "$ref": "#/components/responses/NotFound" }, "409": { "$ref": "#/components/responses/Conflict" } } }
        """#,
        .demote: #"""
        { "summary": "One step back", "security": [{ "bearer": [] }], "parameters": [{ "$ref": "#/components/parameters/id" }],
        "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/StepRequest" } } } },
        "responses": { "200": { "$ref": "#/components/responses/Operation" }, "401": { "$ref": "#/components/responses/Unauthorized" },
          "403": { "$ref": "#/components/responses/Forbidden" }, "404": { "$ref": "#/components/responses/NotFound" }, "409": { "$ref": "#/components/responses/Conflict" } } }
        """#,
        .rollback: #"""
        { "summary": "Restore an earlier table version", "security": [{ "bearer": [] }],
        "requestBody": { "required": false, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RollbackRequest" } } } },
        "responses": { "200": { "$ref": "#/components/responses/Operation" }, "401": { "$ref": "#/components/responses/Unauthorized" },
          "403": { "$ref": "#/components/responses/Forbidden" }, "404": { "$ref": "#/components/responses/NotFound" }, "409": { "$ref": "#/components/responses/Conflict" } } }
        """#,
    ]

    /// The dashboard's files, by path.
    static let dashboardOperations: [String: String] = [
        "/": #"""
        { "summary": "The dashboard (HTML; its data comes from /api/report)", "responses": { "200": { "description": "The page.", "content": { "text/html": { "schema": { "type": "string" } } } } } }
        """#,
        "/dashboard.css": #"""
        { "summary": "The dashboard's style sheet", "responses": { "200": { "description": "CSS.", "content": { "text/css": { "schema": { "type": "string" } } } } } }
        """#,
        "/dashboard.js": #"""
        { "summary": "The dashboard's script", "responses": { "200": { "description": "JavaScript.", "content": { "text/javascript": { "schema": { "type": "string" } } } } } }
        """#,
    ]

    /// The document without its paths: the description, the security scheme, and the schemas
    /// of every body the API reads or writes.
    private static let head = #"""

        {
          "openapi": "3.1.0",
          "info": {
            "title": "StranglerFig admin API",
            "version": "1",
            "description": "Health, metrics, the live route table, evidence, the audit trail, and the route controls. Writes need `Authorization: Bearer <token>` (401 without one, 403 with a wrong one). Reads under /api need the token too when tokens are configured, unless the proxy runs with --admin-open-reads."
          },
          "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
              "Error": {
                "type": "object", "additionalProperties": false, "required": ["error", "message"],
                "properties": {
                  "error": { "type": "string", "description": "Stable name: unauthorized, forbidden, unknown_route, gate_refused, legacy_still_serving, force_needs_reason, no_step, nothing_to_roll_back, unknown_version, invalid_table, bad_request, file_failed, store_failed, busy, bad_limit, version_conflict, no_table, unavailable." },
                  "message": { "type": "string", "description": "What is wrong and what to do." },
                  "gate": { "$ref": "#/components/schemas/Verdict" },
                  "evidence": { "$ref": "#/components/schemas/Evidence" },
                  "currentVersion": { "type": "string", "description": "With version_conflict: the table's current version." }
                }
              },
              "Status": {
                "type": "object", "additionalProperties": false, "required": ["status"],
                "properties": {
                  "status": { "type": "string", "enum": ["ok", "ready", "starting"], "description": "The proxy's own state; a store outage does not change it." },
                  "store": {
                    "type": "object", "additionalProperties": false, "required": ["state", "since"],
                    "description": "Whether the diff store answers (its cause, when it does not, is in the log).",
                    "properties": {
                      "state": { "type": "string", "enum": ["ok", "unreachable", "notYetReached"] },
                      "since": { "type": "string", "format": "date-time" }
                    }
                  }
                }
              },
              "GateSettings": {
                "type": "object", "additionalProperties": false,
                "properties": {
                  "minSamples": { "type": "integer" }, "maxMismatchRate": { "type": "number" },
                  "maxLatencyRatio": { "type": "number" }, "maxErrorRate": { "type": "number" }
                }
              },
              "Route": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "methods", "path", "mode", "legacy", "fallback", "servedBy", "gate"],
                "properties": {
                  "id": { "type": "string" },
                  "methods": { "type": "array", "items": { "type": "string" } },
                  "path": { "type": "string" },
                  "match": { "$ref": "#/components/schemas/RouteMatch" },
                  "mode": { "type": "string", "enum": ["legacy", "shadow", "canary", "service", "retired"] },
                  "legacy": { "type": "string" },
                  "service": { "type": "string" },
                  "fallback": { "type": "boolean" },
                  "servedBy": { "type": "string" },
                  "canary": {
                    "type": "object", "additionalProperties": false, "required": ["percent"],
                    "properties": { "percent": { "type": "number" }, "stickyKey": { "type": "string" } }
                  },
                  "gate": { "$ref": "#/components/schemas/GateSettings" }
                }
              },
              "RouteMatch": {
                "type": "object", "additionalProperties": false,
                "description": "The route's predicates, as routes.json spells them with header names in lower case; every one must hold. Absent when the route takes every request on its path. Among routes of equal path specificity a route whose predicates contain another's wins over it, and a route with predicates over one without; a request that fails them falls through to the next most specific route.",
                "properties": {
                  "host": { "type": "string", "description": "The Host without port, case or trailing dot: a name, or *. and a domain for any one label under it." },
                  "headers": { "$ref": "#/components/schemas/ValueConditions" },
                  "query": { "$ref": "#/components/schemas/ValueConditions" },
                  "cookies": { "$ref": "#/components/schemas/ValueConditions" }
                }
              },
              "ValueConditions": {
                "type": "object",
                "description": "By name: a value, a list meaning any of them (a repeated key matches when any of its values does; query values compare percent-decoded), or {\"present\": true|false}.",
                "additionalProperties": {
                  "oneOf": [
                    { "type": "string" },
                    { "type": "array", "items": { "type": "string" } },
                    { "type": "object", "additionalProperties": false, "required": ["present"], "properties": { "present": { "type": "boolean" } } }
                  ]
                }
              },
              "Upstream": {
                "type": "object", "additionalProperties": false,
                "required": ["name", "url", "connectTimeoutMs", "timeoutMs", "maxConnectionsPerLoop", "idleTimeoutMs"],
                "properties": {
                  "name": { "type": "string" }, "url": { "type": "string" }, "connectTimeoutMs": { "type": "integer" },
                  "timeoutMs": { "type": "integer" }, "maxConnectionsPerLoop": { "type": "integer" }, "idleTimeoutMs": { "type": "integer" },
                  "tls": {
                    "type": "object", "additionalProperties": false, "required": ["verify"],
                    "description": "TLS to an https upstream; absent for http.",
                    "properties": {
                      "verify": { "type": "boolean" }, "serverName": { "type": "string" }, "caFile": { "type": "string" },
                      "clientCertFile": { "type": "string" }, "warning": { "type": "string" }
                    }
                  }
                }
              },
              "LiveTable": {
                "type": "object", "additionalProperties": false,
                "required": ["version", "loadedAt", "loads", "defaultUpstream", "upstreams", "routes"],
                "properties": {
                  "version": { "type": "string" },
                  "loadedAt": { "type": "string", "format": "date-time" },
                  "source": { "type": "string" },
                  "loads": { "type": "integer" },
                  "defaultUpstream": { "type": "string" },
                  "upstreams": { "type": "array", "items": { "$ref": "#/components/schemas/Upstream" } },
                  "routes": { "type": "array", "items": { "$ref": "#/components/schemas/Route" } },
                  "lastReloadError": {
                    "type": "object", "additionalProperties": false, "required": ["at", "problems", "moreProblems"],
                    "properties": {
                      "at": { "type": "string", "format": "date-time" }, "version": { "type": "string" },
                      "moreProblems": { "type": "integer", "description": "Problems beyond the first 100, counted but not listed." },
                      "problems": {
                        "type": "array",
                        "items": {
                          "type": "object", "additionalProperties": false, "required": ["path", "message"],
                          "properties": { "path": { "type": "string" }, "message": { "type": "string" } }
                        }
                      }
                    }
                  }
                }
              },
              "Evidence": {
                "type": "object", "additionalProperties": false,
                "required": ["samples", "mismatches", "noiseOnly", "acceptedOnly", "statusMismatches", "headerMismatches", "bodyMismatches", "uncomparable", "skipped"],
                "properties": {
                  "samples": { "type": "integer" }, "mismatches": { "type": "integer" }, "noiseOnly": { "type": "integer" }, "acceptedOnly": { "type": "integer" },
                  "statusMismatches": { "type": "integer" }, "headerMismatches": { "type": "integer" },
                  "bodyMismatches": { "type": "integer" }, "uncomparable": { "type": "integer" },
                  "skipped": { "type": "object", "additionalProperties": { "type": "integer" } },
                  "legacyP50": { "type": "number" }, "legacyP99": { "type": "number" },
                  "serviceP50": { "type": "number" }, "serviceP99": { "type": "number" }
                }
              },
              "Verdict": {
                "type": "object", "additionalProperties": false, "required": ["holds", "checks"],
                "properties": {
                  "holds": { "type": "boolean" },
                  "checks": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["name", "actual", "limit", "passed"],
                      "properties": {
                        "name": { "type": "string" }, "actual": { "type": "string" }, "limit": { "type": "string" },
                        "passed": { "type": "boolean" }
                      }
                    }
                  }
                }
              },
              "Coverage": {
                "type": "object", "additionalProperties": false,
                "description": "How much of the evidence window the evidence covers. The span to cover starts at the later of the window's start and the route's first comparison; minutes retention removed, or in which the recorder dropped comparisons, are gaps. A gate does not pass while there are any.",
                "required": ["from", "to", "windowSeconds", "coveredSeconds", "complete", "gaps"],
                "properties": {
                  "from": { "type": "string", "format": "date-time" }, "to": { "type": "string", "format": "date-time" },
                  "windowSeconds": { "type": "number" }, "coveredSeconds": { "type": "number" }, "complete": { "type": "boolean" },
                  "gaps": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["from", "to", "reason"],
                      "properties": {
                        "from": { "type": "string", "format": "date-time" }, "to": { "type": "string", "format": "date-time" },
                        "reason": { "type": "string", "enum": ["retention", "dropped"] }
                      }
                    }
                  }
                }
              },
              "RouteStatus": {
                "type": "object", "additionalProperties": false,
                "required": ["route", "evidenceSince", "coverage", "evidence", "gate", "recentTraffic"],
                "properties": {
                  "route": { "$ref": "#/components/schemas/Route" },
                  "evidenceSince": { "type": "string", "format": "date-time" },
                  "coverage": { "$ref": "#/components/schemas/Coverage" },
                  "evidence": { "$ref": "#/components/schemas/Evidence" },
                  "matchRate": { "type": "number" },
                  "gate": { "$ref": "#/components/schemas/Verdict" },
                  "lastLegacyTraffic": { "type": "string", "format": "date-time" },
                  "recentTraffic": {
                    "type": "object", "additionalProperties": false, "required": ["legacy", "service", "serviceErrors"],
                    "properties": { "legacy": { "type": "integer" }, "service": { "type": "integer" }, "serviceErrors": { "type": "integer" } }
                  }
                }
              },
              "Report": {
                "type": "object", "additionalProperties": false, "required": ["schemaVersion", "generatedAt", "since", "store", "routes"],
                "description": "The diff report, the same JSON as `strangler report --format json` (docs/report-json.md).",
                "properties": {
                  "schemaVersion": { "type": "integer" },
                  "generatedAt": { "type": "string", "format": "date-time" },
                  "since": { "type": "string", "format": "date-time" },
                  "store": { "type": "string" },
                  "routesFile": { "type": "string" },
                  "routes": { "type": "array", "items": { "$ref": "#/components/schemas/RouteReport" } }
                }
              },
              "RouteReport": {
                "type": "object", "additionalProperties": false,
                "required": ["id", "mode", "samples", "matches", "mismatches", "noiseOnly", "acceptedOnly", "uncomparable", "mismatchesByKind", "skipped", "latency", "gate", "coverage", "topDifferences", "noise", "noiseProbes", "accepted", "timeline", "bucketSeconds"],
                "properties": {
                  "id": { "type": "string" },
                  "mode": { "type": "string", "enum": ["legacy", "shadow", "canary", "service", "retired", "unknown"] },
                  "path": { "type": "string" }, "methods": { "type": "array", "items": { "type": "string" } },
                  "legacy": { "type": "string" }, "service": { "type": "string" },
                  "samples": { "type": "integer" }, "matches": { "type": "integer" }, "mismatches": { "type": "integer" },
                  "noiseOnly": { "type": "integer" }, "acceptedOnly": { "type": "integer" }, "uncomparable": { "type": "integer" },
                  "matchRate": { "type": "number" },
                  "matchRateInterval": {
                    "type": "object", "additionalProperties": false, "required": ["low", "high", "confidence"],
                    "properties": { "low": { "type": "number" }, "high": { "type": "number" }, "confidence": { "type": "number" } }
                  },
                  "mismatchesByKind": {
                    "type": "object", "additionalProperties": false, "required": ["status", "header", "body"],
                    "properties": { "status": { "type": "integer" }, "header": { "type": "integer" }, "body": { "type": "integer" } }
                  },
                  "skipped": { "type": "object", "additionalProperties": { "type": "integer" } },
                  "latency": {
                    "type": "object", "additionalProperties": false, "required": ["legacy", "service"],
                    "properties": { "legacy": { "$ref": "#/components/schemas/Percentiles" }, "service": { "$ref": "#/components/schemas/Percentiles" } }
                  },
                  "gate": {
                    "type": "object", "additionalProperties": false, "required": ["holds", "checks", "settings"],
                    "properties": {
                      "holds": { "type": "boolean" },
                      "checks": { "type": "array", "items": { "$ref": "#/components/schemas/Check" } },
                      "settings": { "$ref": "#/components/schemas/GateSettings" }
                    }
                  },
                  "coverage": { "$ref": "#/components/schemas/Coverage" },
                  "topDifferences": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["pointer", "kinds", "count", "share", "firstSeen", "lastSeen", "examples"],
                      "properties": {
                        "pointer": { "type": "string" }, "kinds": { "type": "array", "items": { "type": "string" } },
                        "count": { "type": "integer" }, "share": { "type": "number" },
                        "firstSeen": { "type": "string", "format": "date-time" }, "lastSeen": { "type": "string", "format": "date-time" },
                        "examples": {
                          "type": "array",
                          "items": {
                            "type": "object", "additionalProperties": false, "required": ["requestID", "method", "path", "recordedAt"],
                            "properties": {
                              "requestID": { "type": "string" }, "method": { "type": "string" }, "path": { "type": "string" },
                              "recordedAt": { "type": "string", "format": "date-time" },
                              "legacy": { "type": "string", "description": "Redacted, truncated; absent when the member was missing." },
                              "service": { "type": "string" }
                            }
                          }
                        }
                      }
                    }
                  },
                  "noise": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["pointer", "noisy", "share", "differences"],
                      "properties": { "pointer": { "type": "string" }, "noisy": { "type": "integer" }, "share": { "type": "number" }, "differences": { "type": "integer" } }
                    }
                  },
                  "noiseProbes": { "type": "integer" },
                  "accepted": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["id", "pointer", "reason", "owner", "acceptedAt", "differences"],
                      "properties": {
                        "id": { "type": "integer" }, "pointer": { "type": "string" }, "reason": { "type": "string" }, "owner": { "type": "string" },
                        "acceptedAt": { "type": "string", "format": "date-time" }, "until": { "type": "string", "format": "date-time" },
                        "differences": { "type": "integer" }
                      }
                    }
                  },
                  "timeline": {
                    "type": "array",
                    "items": {
                      "type": "object", "additionalProperties": false, "required": ["start", "samples", "mismatches"],
                      "properties": {
                        "start": { "type": "string", "format": "date-time" }, "samples": { "type": "integer" }, "mismatches": { "type": "integer" },
                        "legacyMeanMs": { "type": "number" }, "serviceMeanMs": { "type": "number" }
                      }
                    }
                  },
                  "bucketSeconds": { "type": "integer" }
                }
              },
              "Percentiles": {
                "type": "object", "additionalProperties": false,
                "properties": { "p50": { "type": "number" }, "p99": { "type": "number" } }
              },
              "Check": {
                "type": "object", "additionalProperties": false, "required": ["name", "actual", "limit", "passed"],
                "properties": { "name": { "type": "string" }, "actual": { "type": "string" }, "limit": { "type": "string" }, "passed": { "type": "boolean" } }
              },
              "RouteStatusList": { "type": "array", "items": { "$ref": "#/components/schemas/RouteStatus" } },
              "Change": {
                "type": "object", "additionalProperties": false, "required": ["changedAt", "actor", "source", "tableVersionAfter"],
                "properties": {
                  "id": { "type": "integer" },
                  "changedAt": { "type": "string", "format": "date-time" },
                  "actor": { "type": "string" },
                  "source": { "type": "string", "enum": ["cli", "admin", "file", "auto"] },
                  "routeId": { "type": "string" },
                  "reason": { "type": "string" },
                  "modeBefore": { "type": "string" },
                  "modeAfter": { "type": "string" },
                  "before": { "type": "object" },
                  "after": { "type": "object" },
                  "tableVersionBefore": { "type": "string" },
                  "tableVersionAfter": { "type": "string" }
                }
              },
              "ChangeList": {
                "type": "object", "additionalProperties": false, "required": ["changes"],
                "properties": { "changes": { "type": "array", "items": { "$ref": "#/components/schemas/Change" } } }
              },
              "Operation": {
                "type": "object", "additionalProperties": false,
                "required": ["changed", "summary", "tableVersionBefore", "tableVersionAfter", "forced", "changes"],
                "properties": {
                  "changed": { "type": "boolean" },
                  "summary": { "type": "string" },
                  "tableVersionBefore": { "type": "string" },
                  "tableVersionAfter": { "type": "string" },
                  "forced": { "type": "boolean" },
                  "changes": { "type": "array", "items": { "$ref": "#/components/schemas/Change" } },
                  "gate": { "$ref": "#/components/schemas/Verdict" },
                  "evidence": { "$ref": "#/components/schemas/Evidence" }
                }
              },
              "StepRequest": {
                "type": "object",
                "properties": {
                  "reason": { "type": "string" },
                  "force": { "type": "boolean", "description": "Override a refusing gate or the legacy-traffic rule; needs a reason." },
                  "actor": { "type": "string", "description": "Who asks; recorded beside the token's name." },
                  "expectedVersion": { "type": "string", "description": "The table version the change is made against (or send If-Match); another current version is a 409 version_conflict." }
                }
              },
              "ModeRequest": {
                "type": "object", "required": ["mode"],
                "properties": {
                  "mode": { "type": "string", "enum": ["legacy", "shadow", "canary", "service", "retired"] },
                  "percent": { "type": "number", "description": "The canary share, 0-100 (mode canary only)." },
                  "reason": { "type": "string" }, "force": { "type": "boolean" }, "actor": { "type": "string" },
                  "expectedVersion": { "type": "string" }
                }
              },
              "RollbackRequest": {
                "type": "object",
                "properties": {
                  "to": { "type": "string", "description": "A table version (or unique prefix); default: the one before the latest change." },
                  "reason": { "type": "string" }, "actor": { "type": "string" }, "expectedVersion": { "type": "string" }
                }
              }
            },
            "responses": {
              "Unauthorized": { "description": "No bearer token.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Forbidden": { "description": "A token this proxy does not accept.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "NotFound": { "description": "No such route or table version.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Conflict": { "description": "Refused: a gate, the legacy-traffic rule, no step left, or the table is no longer the version the change was made against (version_conflict, with currentVersion). The gate's figures are included.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "BadRequest": { "description": "The body is not valid, or force came without a reason.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Unprocessable": { "description": "The edited table would not validate.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
              "Operation": { "description": "What changed, with the audit rows.", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Operation" } } } }
            },
            "parameters": {
              "id": { "name": "id", "in": "path", "required": true, "schema": { "type": "string" } },
              "limit": { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "default": 50, "minimum": 1, "maximum": 1000 } }
            }
          }
        }
        """#
}
