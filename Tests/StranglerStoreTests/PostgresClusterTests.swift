import Foundation
import StranglerTestSupport
import Testing

/// The tests' own PostgreSQL server: databases handed out by one cluster are separate, and a
/// cluster stopped and started again answers on the same URL with its data intact. Each check runs
/// the real `psql` against the URL's host, port, user and database, as a client of the store would.
@Suite("PostgreSQL test cluster")
struct PostgresClusterTests {
    @Test("the shared cluster is started once, listens on loopback, and hands out separate databases")
    func separateDatabases() throws {
        let cluster = try PostgresCluster.shared()
        #expect(try PostgresCluster.shared() === cluster, "the suite starts PostgreSQL once")
        let first = try cluster.makeDatabase()
        let second = try cluster.makeDatabase()
        #expect(first != second)
        #expect(first.scheme == "postgres")
        #expect(first.host == "127.0.0.1")
        #expect(first.port == cluster.port)

        let serverSide = try cluster.psql(
            first,
            "SELECT current_database(), inet_server_addr(), current_setting('port'), current_setting('fsync')"
        )
        #expect(serverSide.status == 0, "\(serverSide.output)")
        #expect(serverSide.output == "\(first.lastPathComponent)|127.0.0.1|\(cluster.port)|off")

        let created = try cluster.psql(first, "CREATE TABLE widgets (id integer); INSERT INTO widgets VALUES (7)")
        #expect(created.status == 0, "\(created.output)")
        let inFirst = try cluster.psql(first, "SELECT id FROM widgets")
        #expect(inFirst.status == 0, "\(inFirst.output)")
        #expect(inFirst.output == "7")

        let listed = try cluster.psql(second, "SELECT count(*) FROM pg_tables WHERE tablename = 'widgets'")
        #expect(listed.status == 0, "\(listed.output)")
        #expect(listed.output == "0", "a table made in one database is absent from another")
        let inSecond = try cluster.psql(second, "SELECT id FROM widgets")
        #expect(inSecond.status != 0)
        #expect(inSecond.output.contains("relation \"widgets\" does not exist"), "\(inSecond.output)")
    }

    @Test("a named database gets that name, and a name that would need quoting is refused")
    func namedDatabases() throws {
        let cluster = try PostgresCluster.shared()
        let name = "named_\(UUID().uuidString.prefix(8).lowercased())"
        let database = try cluster.makeDatabase(name: name)
        #expect(database.lastPathComponent == name)
        let current = try cluster.psql(database, "SELECT current_database()")
        #expect(current.status == 0, "\(current.output)")
        #expect(current.output == name)
        #expect(throws: PostgresClusterError.self) { try cluster.makeDatabase(name: "drop\"table") }
        #expect(throws: PostgresClusterError.self) { try cluster.makeDatabase(name: name) }
    }

    // Its own cluster: stopping the shared one would break the tests running beside this one.
    @Test("a stopped cluster refuses connections; started again, it answers on the same URL with its data")
    func stopAndStart() throws {
        let cluster = try PostgresCluster()
        defer { cluster.tearDown() }
        let database = try cluster.makeDatabase()
        let created = try cluster.psql(database, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('before the stop')")
        #expect(created.status == 0, "\(created.output)")

        try cluster.stop()
        #expect(!cluster.isRunning)
        let whileStopped = try cluster.psql(database, "SELECT note FROM kept")
        #expect(whileStopped.status != 0)
        #expect(whileStopped.output.contains("Connection refused"), "\(whileStopped.output)")

        try cluster.start()
        #expect(cluster.isRunning)
        let afterStart = try cluster.psql(database, "SELECT note FROM kept")
        #expect(afterStart.status == 0, "\(afterStart.output)")
        #expect(afterStart.output == "before the stop")

        cluster.tearDown()
        #expect(!FileManager.default.fileExists(atPath: cluster.directory.path))
        let afterTearDown = try cluster.psql(database, "SELECT 1")
        #expect(afterTearDown.status != 0)
        #expect(throws: PostgresClusterError.self) { try cluster.start() }
    }
}
