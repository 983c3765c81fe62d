import Foundation
import GRDB

/// The OMS's state-changing operations, shared by the monolith and (for dry runs) the services.
enum OMSOperations {
    /// Places an order: validates, reserves stock at the best-stocked location, records it, and
    /// returns the new order's id. A dry run calls this inside a transaction it rolls back.
    static func placeOrder(_ db: Database, body: [String: Any]) throws -> String {
        guard let customerID = body["customerId"] as? String,
            try Bool.fetchOne(db, sql: "SELECT 1 FROM customers WHERE id = ?", arguments: [customerID]) == true
        else { throw DemoFailure(status: .unprocessableContent, code: "BAD_CUSTOMER", message: "customerId MISSING OR UNKNOWN") }
        guard let items = body["items"] as? [[String: Any]], !items.isEmpty else {
            throw DemoFailure(status: .unprocessableContent, code: "NO_ITEMS", message: "items MUST BE A NON-EMPTY LIST")
        }
        let zip = body["shipZip"] as? String ?? "10001"
        let next = (try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(CAST(SUBSTR(id, 5) AS INTEGER)), 100000) + 1 FROM orders")) ?? 100_001
        let id = "ORD-\(next)"
        let now = OMSTime.nowISO()
        try db.execute(
            sql: "INSERT INTO orders VALUES (?, ?, ?, 'PLACED', ?, ?, ?, 'USD')",
            arguments: [id, 70_000 + next % 100_000 * 13, customerID, now, now, zip]
        )
        for (index, item) in items.enumerated() {
            guard let sku = item["sku"] as? String, let qty = (item["qty"] as? NSNumber)?.intValue, qty > 0 else {
                throw DemoFailure(status: .unprocessableContent, code: "BAD_ITEM", message: "items[\(index)] NEEDS sku AND qty > 0")
            }
            guard let price = try Int.fetchOne(db, sql: "SELECT price_cents FROM products WHERE sku = ?", arguments: [sku]) else {
                throw DemoFailure(status: .unprocessableContent, code: "BAD_SKU", message: "SKU \(sku) NOT FOUND")
            }
            guard
                let location = try String.fetchOne(
                    db,
                    sql: "SELECT location FROM inventory WHERE sku = ? AND on_hand - reserved >= ? ORDER BY on_hand - reserved DESC LIMIT 1",
                    arguments: [sku, qty]
                )
            else { throw DemoFailure(status: .conflict, code: "OUT_OF_STOCK", message: "SKU \(sku) HAS LESS THAN \(qty) AVAILABLE") }
            try db.execute(
                sql: "UPDATE inventory SET reserved = reserved + ?, updated_at = ? WHERE sku = ? AND location = ?",
                arguments: [qty, now, sku, location]
            )
            try db.execute(sql: "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", arguments: [id, index + 1, sku, qty, price])
        }
        return id
    }

    static func cancelOrder(_ db: Database, id: String) throws {
        guard let status = try String.fetchOne(db, sql: "SELECT status FROM orders WHERE id = ?", arguments: [id]) else {
            throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "ORDER \(id) NOT FOUND")
        }
        guard status == "PLACED" || status == "PAID" else {
            throw DemoFailure(status: .conflict, code: "BAD_STATE", message: "ORDER \(id) IS \(status) AND CANNOT BE CANCELLED")
        }
        let now = OMSTime.nowISO()
        for item in try Row.fetchAll(db, sql: "SELECT sku, qty FROM order_items WHERE order_id = ?", arguments: [id]) {
            try db.execute(
                sql: """
                    UPDATE inventory SET reserved = MAX(0, reserved - ?), updated_at = ?
                    WHERE sku = ? AND location = (SELECT location FROM inventory WHERE sku = ? ORDER BY reserved DESC LIMIT 1)
                    """,
                arguments: [item["qty"] as Int, now, item["sku"] as String, item["sku"] as String]
            )
        }
        try db.execute(sql: "UPDATE orders SET status = 'CANCELLED', updated_at = ? WHERE id = ?", arguments: [now, id])
        try db.execute(sql: "UPDATE payments SET status = 'REFUNDED' WHERE order_id = ? AND status = 'CAPTURED'", arguments: [id])
    }

    static func authorize(_ db: Database, body: [String: Any]) throws -> Row {
        guard let orderID = body["orderId"] as? String,
            try Bool.fetchOne(db, sql: "SELECT 1 FROM orders WHERE id = ?", arguments: [orderID]) == true
        else { throw DemoFailure(status: .unprocessableContent, code: "BAD_ORDER", message: "orderId MISSING OR UNKNOWN") }
        let card = (body["cardNumber"] as? String ?? "").filter(\.isNumber)
        guard card.count >= 12 else {
            throw DemoFailure(status: .init(code: 402, reasonPhrase: "Payment Required"), code: "CARD_DECLINED", message: "CARD NUMBER INVALID")
        }
        let total =
            try Int.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(qty * unit_price_cents), 0) FROM order_items WHERE order_id = ?",
                arguments: [orderID]
            ) ?? 0
        let next = (try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(CAST(SUBSTR(id, 5) AS INTEGER)), 500000) + 1 FROM payments")) ?? 500_001
        let id = "PAY-\(next)"
        try db.execute(
            sql: "INSERT INTO payments VALUES (?, ?, 'AUTHORIZED', ?, ?, ?)",
            arguments: [id, orderID, total, String(card.suffix(4)), OMSTime.nowISO()]
        )
        return try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE id = ?", arguments: [id])!
    }

    static func settle(_ db: Database, paymentID: String, action: String) throws -> Row {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE id = ?", arguments: [paymentID]) else {
            throw DemoFailure(status: .notFound, code: "NOT_FOUND", message: "PAYMENT \(paymentID) NOT FOUND")
        }
        let status: String = row["status"]
        let (from, to) = action == "capture" ? ("AUTHORIZED", "CAPTURED") : ("CAPTURED", "REFUNDED")
        guard status == from else {
            throw DemoFailure(
                status: .conflict,
                code: "BAD_STATE",
                message: "PAYMENT \(paymentID) IS \(status); \(action.uppercased()) NEEDS \(from)"
            )
        }
        try db.execute(sql: "UPDATE payments SET status = ? WHERE id = ?", arguments: [to, paymentID])
        if to == "CAPTURED" {
            try db.execute(
                sql: "UPDATE orders SET status = 'PAID', updated_at = ? WHERE id = ? AND status = 'PLACED'",
                arguments: [OMSTime.nowISO(), row["order_id"] as String]
            )
        }
        return try Row.fetchOne(db, sql: "SELECT * FROM payments WHERE id = ?", arguments: [paymentID])!
    }

    struct Quote {
        var carrier: String
        var service: String
        var cents: Int
        var days: Int
    }

    /// Shipping quotes: a price table by zone (first digit of the zip) and weight.
    static func rates(zip: String, weightGrams: Int) throws -> [Quote] {
        guard zip.count == 5, zip.allSatisfy(\.isNumber) else {
            throw DemoFailure(status: .badRequest, code: "BAD_ZIP", message: "zip MUST BE 5 DIGITS")
        }
        guard weightGrams > 0, weightGrams <= 70_000 else {
            throw DemoFailure(status: .badRequest, code: "BAD_WEIGHT", message: "weightGrams MUST BE 1..70000")
        }
        let zone = Int(String(zip.first!))! % 8 + 1
        let pounds = (weightGrams + 453) / 454
        return [
            Quote(carrier: "USPS", service: "ground", cents: 495 + zone * 60 + pounds * 85, days: 3 + zone / 2),
            Quote(carrier: "UPS", service: "ground", cents: 799 + zone * 75 + pounds * 95, days: 2 + zone / 3),
            Quote(carrier: "FEDEX", service: "express", cents: 1_999 + zone * 150 + pounds * 210, days: 1),
        ]
    }

    static func openReturn(_ db: Database, body: [String: Any]) throws -> Row {
        guard let orderID = body["orderId"] as? String,
            let status = try String.fetchOne(db, sql: "SELECT status FROM orders WHERE id = ?", arguments: [orderID])
        else { throw DemoFailure(status: .unprocessableContent, code: "BAD_ORDER", message: "orderId MISSING OR UNKNOWN") }
        guard status == "DELIVERED" else {
            throw DemoFailure(
                status: .conflict,
                code: "NOT_RETURNABLE",
                message: "ORDER \(orderID) IS \(status); ONLY DELIVERED ORDERS CAN BE RETURNED"
            )
        }
        let total =
            try Int.fetchOne(
                db,
                sql: "SELECT COALESCE(SUM(qty * unit_price_cents), 0) FROM order_items WHERE order_id = ?",
                arguments: [orderID]
            ) ?? 0
        let next = (try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(CAST(SUBSTR(id, 5) AS INTEGER)), 3000) + 1 FROM returns")) ?? 3_001
        let id = "RMA-\(next)"
        try db.execute(
            sql: "INSERT INTO returns VALUES (?, ?, 'OPEN', ?, ?, ?)",
            arguments: [id, orderID, body["reason"] as? String ?? "unspecified", total, OMSTime.nowISO()]
        )
        return try Row.fetchOne(db, sql: "SELECT * FROM returns WHERE id = ?", arguments: [id])!
    }
}
