import DemoOMS
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Demo OMS: legacy monolith and extracted services")
struct DemoOMSTests {
    static func database() throws -> OMSDatabase {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("oms-\(UUID().uuidString)/oms.sqlite").path
        return try OMSDatabase(path: path)
    }

    /// One GET against a router, returning status and body (as Sendable values).
    static func get(_ router: Router<BasicRequestContext>, _ uri: String) async throws -> (HTTPResponse.Status, Data) {
        try await Application(router: router).test(.router) { client in
            try await client.execute(uri: uri, method: .get) { ($0.status, Data(buffer: $0.body)) }
        }
    }

    static func object(_ data: Data) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: buffer))) as? [String: Any] ?? [:]
    }

    @Test("the seed is deterministic: two fresh databases serve the same order")
    func deterministicSeed() async throws {
        let (firstStatus, first) = try await Self.get(LegacyOMS.router(database: try Self.database()), "/orders/ORD-100001")
        let (_, second) = try await Self.get(LegacyOMS.router(database: try Self.database()), "/orders/ORD-100001")
        #expect(firstStatus == .ok)
        #expect(!first.isEmpty)
        #expect(first == second)
    }

    @Test("the legacy answers in its legacy shape: money strings, its own timestamps, internal fields")
    func legacyQuirks() async throws {
        let app = Application(router: LegacyOMS.router(database: try Self.database()))
        try await app.test(.router) { client in
            try await client.execute(uri: "/orders/ORD-100001", method: .get) { response in
                let order = Self.json(response.body)
                #expect(order["orderId"] as? String == "ORD-100001")
                #expect((order["total"] as? String)?.contains(".") == true)
                #expect(order["LEGACY_ROW_ID"] is Int)
                let created = try #require(order["createdAt"] as? String)
                #expect(created.range(of: #"^\d{8} \d{2}:\d{2}:\d{2}$"#, options: .regularExpression) != nil)
            }
            try await client.execute(uri: "/orders/ORD-999999", method: .get) { response in
                #expect(response.status == .notFound)
                #expect(Self.json(response.body)["ERROR"] as? String == "NOT_FOUND")
            }
            try await client.execute(uri: "/inventory/SKU-1001", method: .get) { response in
                let inventory = Self.json(response.body)
                #expect(inventory["sysFlags"] as? String == "0x00")
                #expect((inventory["locations"] as? [[String: Any]])?.isEmpty == false)
            }
        }
    }

    @Test("the OMS flows work: place, pay, cancel, rates, returns")
    func flows() async throws {
        let database = try Self.database()
        let app = Application(router: LegacyOMS.router(database: database))
        try await app.test(.router) { client in
            let order = #"{"customerId": "CUST-0001", "items": [{"sku": "SKU-1002", "qty": 1}], "shipZip": "94105"}"#
            var orderID = ""
            try await client.execute(uri: "/orders", method: .post, body: ByteBuffer(string: order)) { response in
                #expect(response.status == .created)
                orderID = Self.json(response.body)["orderId"] as? String ?? ""
                #expect(Self.json(response.body)["status"] as? String == "PLACED")
            }
            #expect(orderID == "ORD-100061")
            var paymentID = ""
            let authorize = #"{"orderId": "\#(orderID)", "cardNumber": "4111 1111 1111 1111"}"#
            try await client.execute(uri: "/payments/authorize", method: .post, body: ByteBuffer(string: authorize)) { response in
                #expect(response.status == .created)
                paymentID = Self.json(response.body)["paymentId"] as? String ?? ""
                #expect(Self.json(response.body)["cardLast4"] as? String == "1111")
            }
            try await client.execute(uri: "/payments/\(paymentID)/capture", method: .post) { response in
                #expect(Self.json(response.body)["status"] as? String == "CAPTURED")
            }
            try await client.execute(uri: "/orders/\(orderID)/cancel", method: .post) { response in
                #expect(Self.json(response.body)["status"] as? String == "CANCELLED")
            }
            try await client.execute(uri: "/orders/\(orderID)/cancel", method: .post) { response in
                #expect(response.status == .conflict)
            }
            try await client.execute(uri: "/shipping/rates?zip=94105&weightGrams=1200", method: .get) { response in
                #expect((Self.json(response.body)["rates"] as? [[String: Any]])?.count == 3)
            }
            try await client.execute(uri: "/shipping/rates?zip=abc&weightGrams=1200", method: .get) { response in
                #expect(response.status == .badRequest)
            }
            try await client.execute(uri: "/returns", method: .post, body: ByteBuffer(string: #"{"orderId": "\#(orderID)"}"#)) { response in
                #expect(response.status == .conflict)  // a cancelled order can't be returned
            }
        }
    }

    @Test("the inventory service serves the same stock in the modern shape, with its one real difference")
    func inventoryService() async throws {
        let database = try Self.database()
        let legacy = Self.object(try await Self.get(LegacyOMS.router(database: database), "/inventory/SKU-1001").1)
        let modern = Self.object(try await Self.get(ExtractedServices.inventoryRouter(database: database), "/inventory/SKU-1001").1)
        let (missingStatus, missing) = try await Self.get(ExtractedServices.inventoryRouter(database: database), "/inventory/NOPE")
        #expect(missingStatus == .notFound)
        #expect(Self.object(missing)["error"] as? String == "not_found")
        #expect(legacy["sku"] as? String == modern["sku"] as? String)
        #expect(legacy["totalReserved"] as? Int == modern["totalReserved"] as? Int)
        let legacyLocations = Set((legacy["locations"] as? [[String: Any]] ?? []).compactMap { $0["location"] as? String })
        let modernLocations = (modern["locations"] as? [[String: Any]] ?? []).compactMap { $0["location"] as? String }
        #expect(Set(modernLocations) == legacyLocations)
        #expect(modernLocations == modernLocations.sorted())
        #expect(modern["sysFlags"] == nil)
        #expect((modern["updatedAt"] as? String)?.hasSuffix("Z") == true)
        // The service counts distribution-centre stock only; SKU-1001 has store stock, so they differ.
        #expect((modern["totalOnHand"] as? Int ?? 0) < (legacy["totalOnHand"] as? Int ?? 0))
    }

    @Test("the tracking service answers for shipped orders in the modern shape")
    func trackingService() async throws {
        let database = try Self.database()
        let shipped = try await database.pool.read { db in
            try String.fetchOne(db, sql: "SELECT order_id FROM shipments ORDER BY order_id LIMIT 1")
        }
        let orderID = try #require(shipped)
        let legacy = Self.object(try await Self.get(LegacyOMS.router(database: database), "/orders/\(orderID)/tracking").1)
        let modern = Self.object(try await Self.get(ExtractedServices.trackingRouter(database: database), "/orders/\(orderID)/tracking").1)
        #expect(legacy["trackingNumber"] != nil)
        #expect(legacy["trackingNumber"] as? String == modern["trackingNumber"] as? String)
        #expect((legacy["status"] as? String)?.lowercased() == modern["status"] as? String)
        #expect((legacy["events"] as? [Any])?.count == (modern["events"] as? [Any])?.count)
    }
}

@Suite("Demo orders service and dry runs")
struct DemoOrdersServiceTests {
    static func orderCount(_ database: OMSDatabase) async throws -> Int {
        try await database.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM orders") ?? 0 }
    }

    @Test("a dry-run POST /orders answers with the would-be order and commits nothing; a real one commits")
    func dryRun() async throws {
        let database = try DemoOMSTests.database()
        let before = try await Self.orderCount(database)
        let order = #"{"customerId": "CUST-0002", "items": [{"sku": "SKU-1003", "qty": 2}]}"#
        let router = ExtractedServices.ordersRouter(database: database)
        let (dryStatus, dryHeader, dryBody) = try await Application(router: router).test(.router) { client in
            try await client.execute(
                uri: "/orders",
                method: .post,
                headers: [HTTPField.Name("X-Strangler-Shadow")!: "dry-run"],
                body: ByteBuffer(string: order)
            ) { ($0.status, $0.headers[HTTPField.Name("X-Dry-Run")!], Data(buffer: $0.body)) }
        }
        #expect(dryStatus == .created)
        #expect(dryHeader == "true")
        let wouldBe = DemoOMSTests.object(dryBody)
        #expect(wouldBe["orderId"] as? String == "ORD-100061")
        #expect(wouldBe["status"] as? String == "placed")
        #expect(try await Self.orderCount(database) == before)
        let reserved = try await database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT SUM(reserved) FROM inventory WHERE sku = 'SKU-1003'") ?? 0
        }

        let realStatus = try await Application(router: router).test(.router) { client in
            try await client.execute(uri: "/orders", method: .post, body: ByteBuffer(string: order)) { $0.status }
        }
        #expect(realStatus == .created)
        #expect(try await Self.orderCount(database) == before + 1)
        let reservedAfter = try await database.pool.read { db in
            try Int.fetchOne(db, sql: "SELECT SUM(reserved) FROM inventory WHERE sku = 'SKU-1003'") ?? 0
        }
        #expect(reservedAfter == reserved + 2)
    }
}
