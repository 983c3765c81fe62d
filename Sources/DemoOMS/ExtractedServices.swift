import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import Logging

/// The first services extracted from the monolith. Each is its own Hummingbird listener, reads
/// the same data, and answers in the modern shape: numbers for money, ISO 8601 timestamps,
/// lower-case enums, no internal fields, `{"error", "message"}` errors.
///
/// Their differences from the legacy are what shadowing is meant to surface: some are shape
/// changes a `compare` rule accounts for (timestamps, array order), and some are real (the
/// inventory service counts only distribution-centre stock in `totalOnHand`).
public enum ExtractedServices {
    /// The inventory service: `GET /inventory/{sku}`.
    public static func inventoryRouter(database: OMSDatabase) -> Router<BasicRequestContext> {
        let router = Router()
        let db = database.pool
        router.get("/health") { _, _ in DemoJSON.response(["status": "ok", "service": "inventory"]) }
        router.get("/inventory/:sku") { _, context in
            let sku = context.parameters.get("sku") ?? ""
            return try await modern {
                try await db.read { db in
                    guard let name = try String.fetchOne(db, sql: "SELECT name FROM products WHERE sku = ?", arguments: [sku]) else {
                        throw DemoFailure(status: .notFound, code: "not_found", message: "no product with sku \(sku)")
                    }
                    let rows = try Row.fetchAll(
                        db,
                        sql: "SELECT i.*, l.kind FROM inventory i JOIN locations l ON l.code = i.location WHERE sku = ? ORDER BY location",
                        arguments: [sku]
                    )
                    // The extracted service counts distribution-centre stock only: store stock is
                    // not shippable. The legacy counts every location. A real difference.
                    let dcRows = rows.filter { ($0["kind"] as String) == "DC" }
                    let onHand = dcRows.reduce(0) { $0 + ($1["on_hand"] as Int) }
                    let reserved = rows.reduce(0) { $0 + ($1["reserved"] as Int) }
                    return DemoJSON.encode([
                        "sku": sku, "productName": name, "totalOnHand": onHand, "totalReserved": reserved,
                        "available": max(0, onHand - reserved),
                        "locations": rows.map { row -> [String: Any] in
                            [
                                "location": row["location"] as String, "onHand": row["on_hand"] as Int, "reserved": row["reserved"] as Int,
                                "lastCount": row["last_count"] as String,
                            ]
                        },
                        "updatedAt": rows.map { $0["updated_at"] as String }.max() ?? OMSTime.nowISO(),
                    ])
                }
            }
        }
        return router
    }

    /// The tracking service: `GET /orders/{id}/tracking` and `GET /tracking/{number}`.
    public static func trackingRouter(database: OMSDatabase) -> Router<BasicRequestContext> {
        let router = Router()
        let db = database.pool
        router.get("/health") { _, _ in DemoJSON.response(["status": "ok", "service": "tracking"]) }
        router.get("/orders/:id/tracking") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await modern { try await db.read { db in DemoJSON.encode(try tracking(db, orderID: id)) } }
        }
        router.get("/tracking/:number") { _, context in
            let number = context.parameters.get("number") ?? ""
            return try await modern {
                try await db.read { db in
                    guard let id = try String.fetchOne(db, sql: "SELECT order_id FROM shipments WHERE tracking_number = ?", arguments: [number])
                    else { throw DemoFailure(status: .notFound, code: "not_found", message: "no shipment with tracking number \(number)") }
                    return DemoJSON.encode(try tracking(db, orderID: id))
                }
            }
        }
        return router
    }

    /// The orders service: `GET /orders/{id}` and `POST /orders`.
    ///
    /// It honours `X-Strangler-Shadow: dry-run`: the order is placed inside a transaction that is
    /// rolled back, and the answer is the order that would have been created (with
    /// `X-Dry-Run: true`). Nothing is committed, so a shadowed `POST /orders` can't place a
    /// second order.
    public static func ordersRouter(database: OMSDatabase) -> Router<BasicRequestContext> {
        let router = Router()
        let pool = database.pool
        router.get("/health") { _, _ in DemoJSON.response(["status": "ok", "service": "orders"]) }
        router.get("/orders/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            return try await modern { try await pool.read { db in DemoJSON.encode(try order(db, id: id)) } }
        }
        router.post("/orders") { request, _ in
            let body = try await DemoJSON.body(request)
            let dryRun = request.headers[HTTPField.Name("X-Strangler-Shadow")!]?.lowercased() == "dry-run"
            var response = try await modern(status: .created) {
                try await pool.writeWithoutTransaction { db in
                    var result = Data()
                    try db.inTransaction {
                        result = DemoJSON.encode(try order(db, id: try OMSOperations.placeOrder(db, body: DemoJSON.object(body))))
                        return dryRun ? .rollback : .commit
                    }
                    return result
                }
            }
            if dryRun { response.headers[HTTPField.Name("X-Dry-Run")!] = "true" }
            return response
        }
        return router
    }

    /// An order in the modern shape: numbers for money, ISO timestamps, lower-case status.
    static func order(_ db: Database, id: String) throws -> [String: Any] {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM orders WHERE id = ?", arguments: [id]) else {
            throw DemoFailure(status: .notFound, code: "not_found", message: "no order \(id)")
        }
        let items = try Row.fetchAll(db, sql: "SELECT * FROM order_items WHERE order_id = ? ORDER BY line", arguments: [id])
        let total = items.reduce(0) { $0 + ($1["qty"] as Int) * ($1["unit_price_cents"] as Int) }
        return [
            "orderId": id, "customerId": row["customer_id"] as String, "status": (row["status"] as String).lowercased(),
            "createdAt": row["created_at"] as String, "updatedAt": row["updated_at"] as String,
            "shipZip": row["ship_zip"] as String, "currency": row["currency"] as String, "total": OMSMoney.decimal(total),
            "items": items.map { item -> [String: Any] in
                [
                    "line": item["line"] as Int, "sku": item["sku"] as String, "qty": item["qty"] as Int,
                    "unitPrice": OMSMoney.decimal(item["unit_price_cents"]),
                ]
            },
        ]
    }

    static func tracking(_ db: Database, orderID: String) throws -> [String: Any] {
        guard let shipment = try Row.fetchOne(db, sql: "SELECT * FROM shipments WHERE order_id = ?", arguments: [orderID]) else {
            throw DemoFailure(status: .notFound, code: "not_shipped", message: "order \(orderID) has no shipment")
        }
        let number: String = shipment["tracking_number"]
        let events = try Row.fetchAll(db, sql: "SELECT * FROM tracking_events WHERE tracking_number = ? ORDER BY seq", arguments: [number])
        return [
            "orderId": orderID, "carrier": shipment["carrier"] as String, "trackingNumber": number,
            "status": (shipment["status"] as String).lowercased(),
            "events": events.map { event -> [String: Any] in
                [
                    "seq": event["seq"] as Int, "ts": event["at"] as String, "code": event["code"] as String,
                    "desc": event["description"] as String, "loc": event["location"] as String,
                ]
            },
            "lastUpdate": events.last.map { $0["at"] as String } ?? shipment["shipped_at"],
        ]
    }

    /// A service as a runnable Hummingbird application.
    public static func makeApplication(
        name: String,
        router: Router<BasicRequestContext>,
        host: String,
        port: Int,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: name),
            onServerRunning: { await onRunning($0.localAddress?.port ?? port) },
            logger: logger
        )
    }

    static func modern(status: HTTPResponse.Status = .ok, _ body: () async throws -> Data) async throws -> Response {
        do {
            return DemoJSON.response(data: try await body(), status: status)
        } catch let failure as DemoFailure {
            return DemoJSON.response(["error": failure.code, "message": failure.message], status: failure.status)
        }
    }
}
