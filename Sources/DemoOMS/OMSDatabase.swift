import Foundation
import GRDB

/// The demo OMS's data: one SQLite file, created and seeded deterministically on first open.
///
/// The legacy monolith owns it; the extracted services read the same file (as a real
/// strangler-fig extraction often starts: new code, same data).
public final class OMSDatabase: Sendable {
    /// The GRDB pool (WAL mode: readers never block the writer).
    public let pool: DatabasePool
    /// Where the file lives.
    public let path: String

    /// Opens (and on first use creates and seeds) the database at `path`.
    public init(path: String) throws {
        self.path = path
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        pool = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(pool)
        try pool.write { db in
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM customers") == 0 {
                try OMSSeed.seed(db)
            }
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, tier TEXT NOT NULL, created_at TEXT NOT NULL);
                    CREATE TABLE products (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL, weight_grams INTEGER NOT NULL);
                    CREATE TABLE locations (code TEXT PRIMARY KEY, kind TEXT NOT NULL, city TEXT NOT NULL);
                    CREATE TABLE inventory (
                        sku TEXT NOT NULL REFERENCES products(sku), location TEXT NOT NULL REFERENCES locations(code),
                        on_hand INTEGER NOT NULL, reserved INTEGER NOT NULL, last_count TEXT NOT NULL, updated_at TEXT NOT NULL,
                        PRIMARY KEY (sku, location));
                    CREATE TABLE orders (
                        id TEXT PRIMARY KEY, row_id INTEGER NOT NULL, customer_id TEXT NOT NULL REFERENCES customers(id),
                        status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, ship_zip TEXT NOT NULL,
                        currency TEXT NOT NULL);
                    CREATE TABLE order_items (
                        order_id TEXT NOT NULL REFERENCES orders(id), line INTEGER NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL,
                        unit_price_cents INTEGER NOT NULL, PRIMARY KEY (order_id, line));
                    CREATE TABLE payments (
                        id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(id), status TEXT NOT NULL,
                        amount_cents INTEGER NOT NULL, card_last4 TEXT NOT NULL, created_at TEXT NOT NULL);
                    CREATE TABLE shipments (
                        order_id TEXT PRIMARY KEY REFERENCES orders(id), carrier TEXT NOT NULL, tracking_number TEXT NOT NULL UNIQUE,
                        status TEXT NOT NULL, shipped_at TEXT NOT NULL);
                    CREATE TABLE tracking_events (
                        tracking_number TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, code TEXT NOT NULL,
                        description TEXT NOT NULL, location TEXT NOT NULL, PRIMARY KEY (tracking_number, seq));
                    CREATE TABLE returns (
                        id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders(id), status TEXT NOT NULL, reason TEXT NOT NULL,
                        refund_cents INTEGER NOT NULL, created_at TEXT NOT NULL);
                    CREATE INDEX orders_by_customer ON orders(customer_id);
                    """
            )
        }
        return migrator
    }
}

/// Timestamps: stored ISO 8601 (UTC); the legacy system prints its own `yyyyMMdd HH:mm:ss`.
public enum OMSTime {
    /// `2026-11-22T14:03:11Z` → `20261122 14:03:11`, the legacy format.
    public static func legacy(_ iso: String) -> String {
        // The ISO strings are ours and fixed-width, so slicing is exact.
        let c = Array(iso)
        guard c.count >= 19 else { return iso }
        return String(c[0..<4]) + String(c[5..<7]) + String(c[8..<10]) + " " + String(c[11..<19])
    }

    /// Now, as stored.
    public static func nowISO() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// Money: stored in cents; the legacy prints strings ("12.50"), the services numbers (12.5).
public enum OMSMoney {
    public static func legacyString(_ cents: Int) -> String {
        let sign = cents < 0 ? "-" : ""
        let value = abs(cents)
        let fraction = value % 100
        return "\(sign)\(value / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    public static func decimal(_ cents: Int) -> Double {
        Double(cents) / 100
    }
}
