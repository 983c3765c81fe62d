import Foundation
import GRDB
import Hummingbird
import Logging

/// The legacy order management monolith: one process, one database, every OMS function.
///
/// It has the quirks of a real legacy system so that shadowing its extracted replacements shows
/// real differences: money as strings (`"12.50"`), its own timestamp format (`20261122 14:03:11`),
/// upper-case enums, internal fields leaking out (`LEGACY_ROW_ID`, `sysFlags`), and errors shaped
/// as `{"ERROR": ..., "MSG": ...}`.
public enum LegacyOMS {
    /// The monolith's router.
    public static func router(database: OMSDatabase) -> Router<BasicRequestContext> {
        let router = Router()
        let db = database.pool

        router.get("/health") { _, _ in DemoJSON.response(["status": "UP", "system": "OMS-LEGACY"]) }

        router.get("/customers") { _, _ in
            try await legacy {
                try await db.read { db in
                    DemoJSON.encode(["customers": try Row.fetchAll(db, sql: "SELECT * FROM customers ORDER BY id").map(customer)])
                }
            }
        }
        router.get("/customers/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy {
                try await db.read { db in
                    guard let row = try Row.fetchOne(db, sql: "SELECT * FROM customers WHERE id = ?", arguments: [id]) else {
                        throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "CUSTOMER \(id) NOT FOUND")
                    }
                    return DemoJSON.encode(customer(row))
                }
            }
        }
        router.get("/products") { _, _ in
            try await legacy {
                try await db.read { db in
                    DemoJSON.encode(["products": try Row.fetchAll(db, sql: "SELECT * FROM products ORDER BY sku").map(product)])
                }
            }
        }
        router.get("/products/:sku") { _, context in
            let sku = context.parameters.get("sku") ?? ""
            return try await legacy {
                try await db.read { db in
                    guard let row = try Row.fetchOne(db, sql: "SELECT * FROM products WHERE sku = ?", arguments: [sku]) else {
                        throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "SKU \(sku) NOT FOUND")
                    }
                    return DemoJSON.encode(product(row))
                }
            }
        }
        router.get("/inventory/:sku") { _, context in
            let sku = context.parameters.get("sku") ?? ""
            return try await legacy { try await db.read { db in DemoJSON.encode(try inventory(db, sku: sku)) } }
        }
        router.get("/orders") { request, _ in
            let customer = request.uri.queryParameters.get("customerId")
            let status = request.uri.queryParameters.get("status")?.uppercased()
            return try await legacy {
                try await db.read { db in
                    var sql = "SELECT id FROM orders WHERE 1 = 1"
                    var arguments: StatementArguments = []
                    if let customer {
                        sql += " AND customer_id = ?"
                        arguments += [customer]
                    }
                    if let status {
                        sql += " AND status = ?"
                        arguments += [status]
                    }
                    let ids = try String.fetchAll(db, sql: sql + " ORDER BY id", arguments: arguments)
                    return DemoJSON.encode(["orders": try ids.map { try order(db, id: $0) }, "count": ids.count])
                }
            }
        }
        router.get("/orders/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy { try await db.read { db in DemoJSON.encode(try order(db, id: id)) } }
        }
        router.post("/orders") { request, _ in
            let body = try await DemoJSON.body(request)
            return try await legacy(status: .created) {
                try await db.write { db in
                    DemoJSON.encode(try order(db, id: try OMSOperations.placeOrder(db, body: DemoJSON.object(body))))
                }
            }
        }
        router.post("/orders/:id/cancel") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy {
                try await db.write { db in
                    try OMSOperations.cancelOrder(db, id: id)
                    return DemoJSON.encode(try order(db, id: id))
                }
            }
        }
        router.get("/orders/:id/tracking") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy { try await db.read { db in DemoJSON.encode(try tracking(db, orderID: id)) } }
        }
        router.get("/tracking/:number") { _, context in
            let number = context.parameters.get("number") ?? ""
            return try await legacy {
                try await db.read { db in
                    guard let id = try String.fetchOne(db, sql: "SELECT order_id FROM shipments WHERE tracking_number = ?", arguments: [number])
                    else { throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "TRACKING \(number) NOT FOUND") }
                    return DemoJSON.encode(try tracking(db, orderID: id))
                }
            }
        }
        router.post("/payments/authorize") { request, _ in
            let body = try await DemoJSON.body(request)
            return try await legacy(status: .created) {
                try await db.write { db in DemoJSON.encode(payment(try OMSOperations.authorize(db, body: DemoJSON.object(body)))) }
            }
        }
        router.get("/payments/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy {
                try await db.read { db in
                    guard let row = try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE id = ?", arguments: [id]) else {
                        throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "PAYMENT \(id) NOT FOUND")
                    }
                    return DemoJSON.encode(payment(row))
                }
            }
        }
        for action in ["capture", "refund"] {
            router.post("/payments/:id/\(action)") { _, context in
                let id = context.parameters.get("id") ?? ""
                return try await legacy {
                    try await db.write { db in DemoJSON.encode(payment(try OMSOperations.settle(db, paymentID: id, action: action))) }
                }
            }
        }
        router.get("/shipping/rates") { request, _ in
            let zip = request.uri.queryParameters.get("zip") ?? ""
            let weight = request.uri.queryParameters.get("weightGrams").flatMap { Int($0) } ?? 0
            return try await legacy {
                let quotes = try OMSOperations.rates(zip: zip, weightGrams: weight)
                return DemoJSON.encode([
                    "zip": zip, "weightGrams": weight,
                    "rates": quotes.map {
                        ["carrier": $0.carrier, "service": $0.service.uppercased(), "price": OMSMoney.legacyString($0.cents), "days": $0.days]
                    },
                ])
            }
        }
        router.post("/returns") { request, _ in
            let body = try await DemoJSON.body(request)
            return try await legacy(status: .created) {
                try await db.write { db in DemoJSON.encode(returnRecord(try OMSOperations.openReturn(db, body: DemoJSON.object(body)))) }
            }
        }
        router.get("/returns/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await legacy {
                try await db.read { db in
                    guard let row = try Row.fetchOne(db, sql: "SELECT * FROM returns WHERE id = ?", arguments: [id]) else {
                        throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "RETURN \(id) NOT FOUND")
                    }
                    return DemoJSON.encode(returnRecord(row))
                }
            }
        }
        return router
    }

    /// The monolith as a runnable Hummingbird application.
    public static func makeApplication(
        database: OMSDatabase,
        host: String,
        port: Int,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(database: database),
            configuration: .init(address: .hostname(host, port: port), serverName: "OMS-LEGACY/4.2"),
            onServerRunning: { await onRunning($0.localAddress?.port ?? port) },
            logger: logger
        )
    }

    /// Runs `body` and maps failures to the legacy error shape.
    static func legacy(status: HTTPResponse.Status = .ok, _ body: () async throws -> Data) async throws -> Response {
        do {
            return DemoJSON.response(data: try await body(), status: status)
        } catch let failure as DemoFailure {
            return DemoJSON.response(["ERROR": failure.code, "MSG": failure.message], status: failure.status)
        }
    }

    // MARK: - Legacy representations

    static func customer(_ row: Row) -> [String: Any] {
        [
            "customerId": row["id"] as String, "name": row["name"] as String, "email": row["email"] as String,
            "tier": (row["tier"] as String).uppercased(), "createdAt": OMSTime.legacy(row["created_at"]),
        ]
    }

    static func product(_ row: Row) -> [String: Any] {
        [
            "sku": row["sku"] as String, "name": row["name"] as String, "price": OMSMoney.legacyString(row["price_cents"]),
            "weightGrams": row["weight_grams"] as Int,
        ]
    }

    static func inventory(_ db: Database, sku: String) throws -> [String: Any] {
        guard let name = try String.fetchOne(db, sql: "SELECT name FROM products WHERE sku = ?", arguments: [sku]) else {
            throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "SKU \(sku) NOT FOUND")
        }
        // The legacy lists the best-stocked location first.
        let rows = try Row.fetchAll(db, sql: "SELECT * FROM inventory WHERE sku = ? ORDER BY on_hand DESC, location", arguments: [sku])
        let updated = rows.map { $0["updated_at"] as String }.max() ?? OMSTime.nowISO()
        return [
            "sku": sku, "productName": name,
            "totalOnHand": rows.reduce(0) { $0 + ($1["on_hand"] as Int) },
            "totalReserved": rows.reduce(0) { $0 + ($1["reserved"] as Int) },
            "locations": rows.map { row -> [String: Any] in
                [
                    "location": row["location"] as String, "onHand": row["on_hand"] as Int, "reserved": row["reserved"] as Int,
                    "lastCount": OMSTime.legacy(row["last_count"]),
                ]
            },
            "updatedAt": OMSTime.legacy(updated), "sysFlags": "0x00",
        ]
    }

    static func order(_ db: Database, id: String) throws -> [String: Any] {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id]) else {
            throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "ORDER \(id) NOT FOUND")
        }
        let items = try Row.fetchAll(db, sql: "SELECT * FROM order_items WHERE order_id = ? ORDER BY line", arguments: [id])
        let total = items.reduce(0) { $0 + ($1["qty"] as Int) * ($1["unit_price_cents"] as Int) }
        return [
            "orderId": id, "customerId": row["customer_id"] as String, "status": row["status"] as String,
            "createdAt": OMSTime.legacy(row["created_at"]), "updatedAt": OMSTime.legacy(row["updated_at"]),
            "shipZip": row["ship_zip"] as String, "currency": row["currency"] as String, "total": OMSMoney.legacyString(total),
            "items": items.map { item -> [String: Any] in
                [
                    "line": item["line"] as Int, "sku": item["sku"] as String, "qty": item["qty"] as Int,
                    "unitPrice": OMSMoney.legacyString(item["unit_price_cents"]),
                ]
            },
            "LEGACY_ROW_ID": row["row_id"] as Int,
        ]
    }

    static func tracking(_ db: Database, orderID: String) throws -> [String: Any] {
        guard let shipment = try Row.fetchOne(db, sql: "SELECT * FROM shipments WHERE order_id = ?", arguments: [orderID]) else {
            throw DemoFailure(status: .notFound, code: "NOT_SHIPPED", message: "ORDER \(orderID) HAS NO SHIPMENT")
        }
        let number: String = shipment["tracking_number"]
        let events = try Row.fetchAll(db, sql: "SELECT * FROM tracking_events WHERE tracking_number = ? ORDER BY seq", arguments: [number])
        return [
            "orderId": orderID, "carrier": shipment["carrier"] as String, "trackingNumber": number,
            "status": shipment["status"] as String,
            "events": events.map { event -> [String: Any] in
                [
                    "seq": event["seq"] as Int, "ts": OMSTime.legacy(event["at"]), "code": event["code"] as String,
                    "desc": event["description"] as String, "loc": event["location"] as String,
                ]
            },
            "lastUpdate": OMSTime.legacy(events.last.map { $0["at"] as String } ?? shipment["shipped_at"]),
        ]
    }

    static func payment(_ row: Row) -> [String: Any] {
        [
            "paymentId": row["id"] as String, "orderId": row["order_id"] as String, "status": row["status"] as String,
            "amount": OMSMoney.legacyString(row["amount_cents"]), "cardLast4": row["card_last4"] as String,
            "createdAt": OMSTime.legacy(row["created_at"]),
        ]
    }

    static func returnRecord(_ row: Row) -> [String: Any] {
        [
            "returnId": row["id"] as String, "orderId": row["order_id"] as String, "status": row["status"] as String,
            "reason": row["reason"] as String, "refund": OMSMoney.legacyString(row["refund_cents"]),
            "createdAt": OMSTime.legacy(row["created_at"]),
        ]
    }
}
