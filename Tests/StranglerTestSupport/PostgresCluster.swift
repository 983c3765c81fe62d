import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A real PostgreSQL server that the tests start for themselves: a fresh cluster in a temporary
/// directory, listening on a free loopback port only, with trust authentication for one superuser.
///
/// Most tests use ``shared()``, so the whole suite starts PostgreSQL once, and take a database of
/// their own from ``makeDatabase(name:)``, so tests sharing the cluster never see each other's
/// tables. A test that stops the server (``stop()`` and ``start()``) makes its own cluster, because
/// stopping the shared one would break every test running beside it.
///
/// The server programs come from Debian's `postgresql` package (`apt-get install postgresql`,
/// which `.ci/setup` runs). `initdb` and the server refuse to run as root, so when the tests run as
/// root the cluster belongs to the `postgres` user that package creates, and `initdb` and `pg_ctl`
/// run as that user through `runuser`.
package final class PostgresCluster: @unchecked Sendable {
    /// The address the server listens on; it never listens beyond loopback.
    package let host = "127.0.0.1"
    /// The server's TCP port, picked free when the cluster is made and kept across ``stop()`` and
    /// ``start()``, so URLs handed out stay valid.
    package private(set) var port = 0
    /// The superuser role that ``makeDatabase(name:)``'s URLs connect as (trust: no password).
    package let superuser: String
    /// The directory holding `initdb`, `pg_ctl` and (usually) `psql`.
    package let binDirectory: URL
    /// The temporary directory holding the data directory, the socket directory and the server log;
    /// ``tearDown()`` deletes it.
    package let directory: URL
    /// The server's log (`pg_ctl -l`); errors quote its tail.
    package var logFile: URL { directory.appendingPathComponent("server.log") }

    private var dataDirectory: URL { directory.appendingPathComponent("data") }
    private var socketDirectory: URL { directory.appendingPathComponent("socket") }
    /// The settings file that the data directory's `postgresql.conf` includes.
    private var settingsFile: URL { dataDirectory.appendingPathComponent("strangler-test.conf") }
    /// The `psql` that ``makeDatabase(name:)`` uses: the one beside `initdb`, else the one on PATH.
    package let psqlPath: String
    /// The OS user that owns the cluster when the tests run as root, nil otherwise.
    private let serverOwner: ServerOwner?

    /// Serialises starting, stopping and tearing down, which run commands one at a time.
    private let lock = NSLock()
    private var running = false
    private var removed = false

    /// Makes a cluster in a fresh temporary directory and starts it.
    ///
    /// - Parameter superuser: the superuser role `initdb` creates, which database URLs use.
    /// - Throws: ``PostgresClusterError`` naming the failed command, the tail of its output and of
    ///   the server log, and what to do.
    package init(superuser: String = "strangler") throws {
        self.superuser = superuser
        let programs = try PostgresPrograms.find()
        binDirectory = programs.binDirectory
        psqlPath = programs.psql
        serverOwner = geteuid() == 0 ? try ServerOwner.postgres() : nil
        // Short names: the socket path (directory + "/.s.PGSQL.NNNNN") must fit in 107 bytes.
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-pg-\(UUID().uuidString.prefix(8))")
        do {
            try FileManager.default.createDirectory(at: socketDirectory, withIntermediateDirectories: true)
            try serverOwner?.takeOwnership(of: [directory, socketDirectory])
            try initialise()
            try startOnFreePort()
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    deinit {
        tearDown()
    }

    // MARK: - The shared cluster

    private static let sharedCluster: Result<PostgresCluster, PostgresClusterError> = {
        do {
            let cluster = try PostgresCluster()
            // Left running, the server would outlive the test process; stop it when the process exits.
            atexit { PostgresCluster.stopSharedAtExit() }
            return .success(cluster)
        } catch let error as PostgresClusterError {
            return .failure(error)
        } catch {
            return .failure(PostgresClusterError(description: "starting the shared PostgreSQL cluster failed: \(error)"))
        }
    }()

    /// The cluster the whole test process shares: started by the first call, stopped and deleted
    /// when the process exits. Take a database of your own with ``makeDatabase(name:)``, and never
    /// stop this one: make a cluster of your own for that.
    ///
    /// - Throws: the error of the first (and only) attempt to start it.
    package static func shared() throws -> PostgresCluster {
        try sharedCluster.get()
    }

    /// At exit, Foundation's `Process` may no longer be usable, so this signals the server directly
    /// (SIGINT is PostgreSQL's fast shutdown) and waits for it to remove its PID file.
    private static func stopSharedAtExit() {
        guard case .success(let cluster) = sharedCluster else { return }
        cluster.lock.lock()
        defer { cluster.lock.unlock() }
        guard !cluster.removed else { return }
        cluster.removed = true
        let pidFile = cluster.dataDirectory.appendingPathComponent("postmaster.pid").path
        if let contents = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = contents.split(separator: "\n").first.flatMap({ pid_t($0) }), pid > 0
        {
            kill(pid, SIGINT)
            // The PID file, not the process, tells when it is done: an orphaned postmaster may stay
            // a zombie in a container whose init does not reap.
            var waits = 0
            while FileManager.default.fileExists(atPath: pidFile), waits < 200 {
                usleep(50_000)
                waits += 1
            }
        }
        try? FileManager.default.removeItem(at: cluster.directory)
    }

    // MARK: - Databases

    /// Creates an empty database and returns its URL, `postgres://USER@127.0.0.1:PORT/NAME`.
    ///
    /// - Parameter name: letters, digits and underscores; a fresh unique name when nil.
    /// - Throws: ``PostgresClusterError`` when the name is not allowed or `CREATE DATABASE` fails.
    package func makeDatabase(name: String? = nil) throws -> URL {
        let name = name ?? "test_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        // Plain names need no quoting in SQL or in the URL.
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
        guard !name.isEmpty, name.count <= 63, name.allSatisfy({ allowed.contains($0) }), !name.first!.isNumber else {
            throw PostgresClusterError(
                description: "database name \"\(name)\" is not allowed: use up to 63 letters, digits and underscores, not starting with a digit"
            )
        }
        _ = try run(
            psqlPath,
            [
                "-X", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", String(port), "-U", superuser, "-d", "postgres", "-Atc",
                "CREATE DATABASE \"\(name)\"",
            ],
            asServerOwner: false,
            doing: "creating database \(name)",
            hint: "Is the cluster running? A stopped cluster needs start() first."
        )
        return URL(string: "postgres://\(superuser)@\(host):\(port)/\(name)")!
    }

    // MARK: - Starting and stopping

    /// Whether the server is running (started and not stopped since).
    package var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return running
    }

    /// Starts the server again on the same port and data directory, after ``stop()``. Does nothing
    /// when it is running.
    ///
    /// - Throws: ``PostgresClusterError`` when `pg_ctl start` fails, for example because something
    ///   else took the port meanwhile, or after ``tearDown()``.
    package func start() throws {
        lock.lock()
        defer { lock.unlock() }
        guard !removed else { throw PostgresClusterError(description: "the PostgreSQL cluster in \(directory.path) was torn down; make a new one") }
        guard !running else { return }
        try startServer()
        running = true
    }

    /// Stops the server (`pg_ctl stop -m fast`: open sessions are disconnected, committed data is
    /// kept). Does nothing when it is stopped.
    ///
    /// - Throws: ``PostgresClusterError`` when `pg_ctl stop` fails.
    package func stop() throws {
        lock.lock()
        defer { lock.unlock() }
        guard running else { return }
        try stopServer(mode: "fast")
        running = false
    }

    /// Stops the server and deletes its directory. Called by `deinit`; later calls do nothing.
    package func tearDown() {
        lock.lock()
        defer { lock.unlock() }
        guard !removed else { return }
        removed = true
        if running {
            // A server that will not stop fast is stopped immediately: its data is deleted anyway.
            if (try? stopServer(mode: "fast")) == nil {
                try? stopServer(mode: "immediate")
            }
            running = false
        }
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Steps

    private func initialise() throws {
        _ = try run(
            binDirectory.appendingPathComponent("initdb").path,
            [
                "-D", dataDirectory.path, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C",
                // Tests do not survive a power cut, so skip the fsyncs that make initdb slow.
                "--no-sync",
            ],
            asServerOwner: true,
            doing: "creating the cluster",
            hint: serverOwner == nil
                ? "Check that \(directory.path) is writable."
                : "Check that the postgres user can reach \(directory.path) (set TMPDIR to a directory it can traverse, such as /tmp)."
        )
        // The port goes in a file of its own, rewritten on each try; postgresql.conf includes it.
        let include = "\n# Test cluster settings, kept apart so they can be rewritten.\ninclude_if_exists = '\(settingsFile.lastPathComponent)'\n"
        let handle = try FileHandle(forWritingTo: dataDirectory.appendingPathComponent("postgresql.conf"))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(include.utf8))
    }

    /// Picks a port with ``LoopbackPorts``; another program may still take it before the server
    /// binds it, so a bind failure is retried on a new port.
    private func startOnFreePort() throws {
        var lastError: PostgresClusterError?
        for _ in 0..<5 {
            port = try LoopbackPorts.reserve()
            do {
                try startServer()
                running = true
                return
            } catch let error as StartFailure where error.portTaken {
                lastError = error.error
            } catch let error as StartFailure {
                throw error.error
            }
        }
        throw lastError!
    }

    private func startServer() throws {
        let socketPath = socketDirectory.path.replacingOccurrences(of: "'", with: "''")
        let settings = """
            listen_addresses = '127.0.0.1'
            port = \(port)
            unix_socket_directories = '\(socketPath)'
            # Speed over durability: a test cluster is deleted after the run.
            fsync = off
            synchronous_commit = off
            full_page_writes = off
            # Tests sharing one cluster each open pools of their own.
            max_connections = 200

            """
        try Data(settings.utf8).write(to: settingsFile)
        let logStart = (try? FileManager.default.attributesOfItem(atPath: logFile.path)[.size] as? Int) ?? 0
        do {
            _ = try run(
                binDirectory.appendingPathComponent("pg_ctl").path,
                ["start", "-w", "-t", "120", "-D", dataDirectory.path, "-l", logFile.path],
                asServerOwner: true,
                doing: "starting the server on 127.0.0.1:\(port)",
                hint: "See the server log above."
            )
        } catch let error as PostgresClusterError {
            let log = Self.tail(of: logFile, from: logStart)
            throw StartFailure(error: error, portTaken: log.contains("could not bind") || log.contains("Address already in use"))
        }
    }

    private func stopServer(mode: String) throws {
        _ = try run(
            binDirectory.appendingPathComponent("pg_ctl").path,
            ["stop", "-w", "-t", "120", "-D", dataDirectory.path, "-m", mode],
            asServerOwner: true,
            doing: "stopping the server (\(mode))",
            hint: "See the server log above; `pgrep -a postgres` shows whether it still runs."
        )
    }

    // MARK: - Running commands

    /// Runs a command to its end, its output going to a file rather than a pipe: `pg_ctl start`
    /// leaves the server running, and a pipe the server inherited would never reach end-of-file.
    ///
    /// - Returns: the command's output (standard output and standard error).
    private func run(_ executable: String, _ arguments: [String], asServerOwner: Bool, doing: String, hint: String) throws -> String {
        var command = [executable] + arguments
        if asServerOwner, let serverOwner {
            command = [serverOwner.runuser, "-u", serverOwner.name, "--"] + command
        }
        let (status, output) = try Self.runProcess(command, in: directory)
        guard status == 0 else {
            var message = "PostgreSQL test cluster: \(doing) failed.\nCommand: \(command.joined(separator: " "))\nExit status: \(status)\n"
            message += "Output (last lines):\n\(Self.lastLines(output))\n"
            if FileManager.default.fileExists(atPath: logFile.path) {
                message += "Server log \(logFile.path) (last lines):\n\(Self.tail(of: logFile, from: 0))\n"
            }
            message += hint
            throw PostgresClusterError(description: message)
        }
        return output
    }

    /// Runs `command` with the `PG*` variables removed from its environment, so a developer's
    /// `PGHOST` or `PGDATABASE` cannot point the tests elsewhere.
    static func runProcess(_ command: [String], in directory: URL?) throws -> (status: Int32, output: String) {
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
            .merging(["PGCONNECT_TIMEOUT": "10"]) { $1 }
        do {
            let run = try ChildProcess.run(command[0], Array(command.dropFirst()), environment: environment, directory: directory?.path, mergeErrors: true)
            return (run.status, String(decoding: run.output, as: UTF8.self))
        } catch {
            throw PostgresClusterError(description: "could not run \(command.joined(separator: " ")): \(error)")
        }
    }

    private static func tail(of file: URL, from offset: Int) -> String {
        guard let data = try? Data(contentsOf: file), data.count > offset else { return "" }
        return lastLines(String(decoding: data.dropFirst(offset), as: UTF8.self))
    }

    private static func lastLines(_ text: String, count: Int = 25) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).suffix(count).joined(separator: "\n")
    }

    /// The bound on one store operation for stores the tests open in-process: the product's
    /// 5 s is for a serving proxy that must not wait; on a test machine with both cores busy
    /// an answer can take longer, and that is not what these tests are about.
    package static let operationTimeout: Duration = .seconds(60)
}

/// Why a ``PostgresCluster`` could not be made, started, stopped or given a database: the command,
/// the tail of its output and of the server log, and what to do.
package struct PostgresClusterError: Error, CustomStringConvertible, Sendable {
    package let description: String
}

/// A failed `pg_ctl start`, and whether the port was taken (worth another try on another port).
private struct StartFailure: Error {
    let error: PostgresClusterError
    let portTaken: Bool
}

/// The OS user that runs PostgreSQL when the tests run as root, and how to switch to it.
private struct ServerOwner {
    let name: String
    let uid: uid_t
    let gid: gid_t
    let runuser: String

    /// Debian's `postgresql` package creates the `postgres` user; `runuser` comes with util-linux.
    static func postgres() throws -> ServerOwner {
        guard let entry = getpwnam("postgres") else {
            throw PostgresClusterError(
                description: """
                    The tests run as root, and PostgreSQL refuses to run as root, so the test cluster runs as the \
                    `postgres` user, which does not exist here. Install Debian's `postgresql` package \
                    (apt-get install postgresql), which creates it, or run the tests as a normal user.
                    """
            )
        }
        guard
            let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }
            )
        else {
            throw PostgresClusterError(
                description:
                    "The tests run as root, and the test cluster runs as `postgres` through runuser, which is missing: apt-get install util-linux."
            )
        }
        return ServerOwner(name: "postgres", uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, runuser: runuser)
    }

    /// Gives the (still empty) directories to the server's user, which must write in them.
    func takeOwnership(of directories: [URL]) throws {
        for directory in directories {
            guard chown(directory.path, uid, gid) == 0 else {
                throw PostgresClusterError(description: "could not give \(directory.path) to the \(name) user (errno \(errno))")
            }
        }
    }
}

/// Where PostgreSQL's programs are.
private struct PostgresPrograms {
    let binDirectory: URL
    let psql: String

    /// `pg_config --bindir` when it names a directory with the server programs, else the newest
    /// `/usr/lib/postgresql/VERSION/bin` (Debian's layout), else `initdb` on PATH.
    static func find() throws -> PostgresPrograms {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":").map(String.init)
        var candidates: [URL] = []
        // Debian's pg_config comes with libpq-dev and may be of another version than the server.
        if let pgConfig = onPath("pg_config", path),
            let result = try? PostgresCluster.runProcess([pgConfig, "--bindir"], in: nil), result.status == 0
        {
            candidates.append(URL(fileURLWithPath: result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        let newestFirst = versions.sorted { version($0).lexicographicallyPrecedes(version($1)) }.reversed()
        candidates += newestFirst.map { URL(fileURLWithPath: "/usr/lib/postgresql/\($0)/bin") }
        if let initdb = onPath("initdb", path) {
            // /usr/local/bin/initdb may be a link into the real directory, where pg_ctl also is.
            candidates.append(URL(fileURLWithPath: initdb).resolvingSymlinksInPath().deletingLastPathComponent())
            candidates.append(URL(fileURLWithPath: initdb).deletingLastPathComponent())
        }
        let isServerDirectory = { (directory: URL) in
            ["initdb", "pg_ctl"].allSatisfy { FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent($0).path) }
        }
        guard let binDirectory = candidates.first(where: isServerDirectory) else {
            throw PostgresClusterError(
                description: """
                    PostgreSQL's server programs (initdb, pg_ctl) were not found: not in `pg_config --bindir`, \
                    not in /usr/lib/postgresql/*/bin, not on PATH. The tests start their own PostgreSQL server: \
                    install Debian's `postgresql` package (apt-get install postgresql; .ci/setup does).
                    """
            )
        }
        let bundled = binDirectory.appendingPathComponent("psql").path
        guard let psql = FileManager.default.isExecutableFile(atPath: bundled) ? bundled : onPath("psql", path) else {
            throw PostgresClusterError(
                description:
                    "psql was not found in \(binDirectory.path) or on PATH: install Debian's `postgresql-client` package (apt-get install postgresql-client)."
            )
        }
        return PostgresPrograms(binDirectory: binDirectory, psql: psql)
    }

    private static func onPath(_ program: String, _ path: [String]) -> String? {
        path.map { "\($0)/\(program)" }.first(where: { FileManager.default.isExecutableFile(atPath: $0) })
    }

    /// "9.6" before "15" before "16": numeric parts, compared in order.
    private static func version(_ name: String) -> [Int] {
        name.split(separator: ".").map { Int($0) ?? -1 }
    }
}

extension PostgresCluster {
    /// Runs `sql` with this cluster's `psql` against the URL's host, port, user and database.
    ///
    /// - Returns: psql's exit status, and its output (errors included) without the trailing newline.
    package func psql(_ database: URL, _ sql: String) throws -> (status: Int32, output: String) {
        let arguments = [
            "-X", "-v", "ON_ERROR_STOP=1",
            "-h", database.host ?? "", "-p", String(database.port ?? 0), "-U", database.user ?? "", "-d", database.lastPathComponent,
            "-Atc", sql,
        ]
        // A developer's PGHOST or PGPASSWORD must not change what is tested.
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
        let run = try ChildProcess.run(psqlPath, arguments, environment: environment, mergeErrors: true)
        let text = String(decoding: run.output, as: UTF8.self)
        return (run.status, text.hasSuffix("\n") ? String(text.dropLast()) : text)
    }
}
