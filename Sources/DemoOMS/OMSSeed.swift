import Foundation
import GRDB

/// Deterministic seed data: the same customers, products, stock and orders on every machine, so
/// README commands and tests can name them (`ORD-100001`, `SKU-1001`, `CUST-0001`).
enum OMSSeed {
    /// A small linear congruential generator: deterministic across platforms, unlike
    /// `SystemRandomNumberGenerator`.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
    }

    static let firstNames = ["Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia"]
    static let lastNames = ["Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Dijkstra", "Perlman"]
    static let productNames = [
        "Trail Runner Shoe", "Rain Shell Jacket", "Merino Base Layer", "Daypack 22L", "Insulated Bottle", "Headlamp 400lm",
        "Camp Stove", "Down Sleeping Bag", "Trekking Poles", "Wool Socks 3-pack",
    ]
    static let locations: [(code: String, kind: String, city: String)] = [
        ("DC-EAST", "DC", "Newark"), ("DC-WEST", "DC", "Reno"), ("STORE-NYC", "STORE", "New York"), ("STORE-SEA", "STORE", "Seattle"),
    ]
    static let carriers = ["UPS", "FEDEX", "USPS"]
    static let zips = ["10001", "94105", "60601", "98101", "30301", "73301"]

    /// The seed's fixed "now": every generated timestamp is before it.
    static let epoch = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18

    static func seed(_ db: Database) throws {
        var random = Generator(state: 42)
        func stamp(daysAgo: Int, minutes: Int) -> String {
            OMSTime.iso(epoch.addingTimeInterval(-Double(daysAgo) * 86_400 + Double(minutes) * 60))
        }

        for index in 1...25 {
            let first = firstNames[random.next(firstNames.count)]
            let last = lastNames[random.next(lastNames.count)]
            try db.execute(
                sql: "INSERT INTO customers VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    String(format: "CUST-%04d", index), "\(first) \(last)", "\(first.lowercased()).\(last.lowercased())\(index)@example.com",
                    ["standard", "gold", "platinum"][random.next(3)], stamp(daysAgo: 400 - index * 7, minutes: random.next(1440)),
                ]
            )
        }
        for location in locations {
            try db.execute(sql: "INSERT INTO locations VALUES (?, ?, ?)", arguments: [location.code, location.kind, location.city])
        }
        for index in 1...40 {
            let sku = "SKU-\(1000 + index)"
            let name = productNames[(index - 1) % productNames.count] + (index > 10 ? " v\((index - 1) / 10 + 1)" : "")
            try db.execute(
                sql: "INSERT INTO products VALUES (?, ?, ?, ?)",
                arguments: [sku, name, 999 + random.next(30_000), 150 + random.next(2_500)]
            )
            for location in locations where random.next(5) != 0 || location.kind == "DC" {
                try db.execute(
                    sql: "INSERT INTO inventory VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [
                        sku, location.code, random.next(120), random.next(8), stamp(daysAgo: random.next(20), minutes: 0),
                        stamp(daysAgo: random.next(3), minutes: random.next(1440)),
                    ]
                )
            }
        }
        let statuses = ["PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]
        for index in 1...60 {
            let id = "ORD-\(100_000 + index)"
            let status = statuses[random.next(statuses.count)]
            let created = stamp(daysAgo: 60 - index, minutes: random.next(1440))
            try db.execute(
                sql: "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    id, 70_000 + index * 13, String(format: "CUST-%04d", 1 + random.next(25)), status, created, created,
                    zips[random.next(zips.count)], "USD",
                ]
            )
            var total = 0
            for line in 1...(1 + random.next(3)) {
                let sku = "SKU-\(1001 + random.next(40))"
                let price = try Int.fetchOne(db, sql: "SELECT price_cents FROM products WHERE sku = ?", arguments: [sku]) ?? 0
                let qty = 1 + random.next(3)
                total += price * qty
                try db.execute(sql: "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", arguments: [id, line, sku, qty, price])
            }
            if status != "PLACED" {
                let paymentStatus = status == "CANCELLED" ? "REFUNDED" : "CAPTURED"
                try db.execute(
                    sql: "INSERT INTO payments VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: ["PAY-\(500_000 + index)", id, paymentStatus, total, String(format: "%04d", random.next(10_000)), created]
                )
            }
            if status == "SHIPPED" || status == "DELIVERED" {
                let carrier = carriers[random.next(carriers.count)]
                let tracking = "\(carrier.prefix(2))\(900_000_000 + index * 7_919)"
                let shipped = stamp(daysAgo: 58 - index, minutes: random.next(600))
                try db.execute(
                    sql: "INSERT INTO shipments VALUES (?, ?, ?, ?, ?)",
                    arguments: [id, carrier, tracking, status == "DELIVERED" ? "DELIVERED" : "IN_TRANSIT", shipped]
                )
                var events: [(String, String, String)] = [
                    ("PU", "Picked up", "DC-EAST"), ("AR", "Arrived at facility", "Hub \(["Memphis", "Louisville", "Dallas"][random.next(3)])"),
                    ("OD", "Out for delivery", "Local depot"),
                ]
                if status == "DELIVERED" { events.append(("DL", "Delivered", "Front door")) } else { events.removeLast(random.next(2)) }
                for (seq, event) in events.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO tracking_events VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [tracking, seq + 1, stamp(daysAgo: 58 - index - seq, minutes: random.next(600)), event.0, event.1, event.2]
                    )
                }
            }
            if status == "DELIVERED", random.next(4) == 0 {
                try db.execute(
                    sql: "INSERT INTO returns VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: ["RMA-\(3000 + index)", id, "RECEIVED", "Does not fit", total / 2, stamp(daysAgo: 50 - index, minutes: 0)]
                )
            }
        }
    }
}
