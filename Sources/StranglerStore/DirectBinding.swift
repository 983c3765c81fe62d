import Foundation
import GRDB
import GRDBSQLite

/// Binds a cached statement's parameters with SQLite's own calls and steps it, for the one
/// statement run per stored comparison.
///
/// GRDB's `execute(arguments:)` boxes every value into a `DatabaseValue` inside a
/// `StatementArguments` array and nests a closure per string to bind it without a copy; per
/// comparison that cost more than SQLite's own work for the row. Here each value goes straight
/// to `sqlite3_bind_*`. Text is copied into a ``BindingArena`` and bound where it lies
/// (`SQLITE_STATIC`, the `nil` destructor): letting SQLite copy it (`SQLITE_TRANSIENT`) was one
/// `malloc` and one `free` per text column, each under SQLite's global memory mutex (Debian's
/// SQLite has no lookaside allocator). With the timestamp's `String`, GRDB's writer made 10.2
/// `malloc` calls per stored comparison under shadow load, and makes 1.6 now. Used inside a GRDB write transaction on a statement from
/// `cachedStatement(sql:)`; GRDB still owns the connection, the transaction and the statement.
struct DirectBinding {
    private let statement: Statement
    private let arena: BindingArena
    private var raw: OpaquePointer { statement.sqliteStatement }
    private var index: Int32 = 0

    init(_ statement: Statement, arena: BindingArena) throws {
        self.statement = statement
        self.arena = arena
        let code = sqlite3_reset(statement.sqliteStatement)
        // Nothing may still point into an arena from an earlier use of this cached statement.
        sqlite3_clear_bindings(statement.sqliteStatement)
        guard code == SQLITE_OK else {
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code),
                message: String(cString: sqlite3_errmsg(sqlite3_db_handle(statement.sqliteStatement)))
            )
        }
    }

    mutating func bind(_ text: String?) {
        index += 1
        guard var text else {
            sqlite3_bind_null(raw, index)
            return
        }
        let bytes = text.withUTF8 { arena.keep($0) }
        sqlite3_bind_text(raw, index, bytes.baseAddress, Int32(bytes.count), nil)
    }

    /// Binds a timestamp as the store keeps it (``StoredTimestamp``), written straight into the
    /// arena rather than made a `String` first.
    mutating func bind(timestamp date: Date) {
        index += 1
        let bytes = arena.keep(count: StoredTimestamp.length) { StoredTimestamp.write(date, to: $0) }
        if let bytes {
            sqlite3_bind_text(raw, index, bytes.baseAddress, Int32(bytes.count), nil)
        } else {
            index -= 1
            bind(StoredTimestamp.format(date))
        }
    }

    mutating func bind(_ value: Int?) {
        index += 1
        if let value { sqlite3_bind_int64(raw, index, Int64(value)) } else { sqlite3_bind_null(raw, index) }
    }

    mutating func bind(_ value: Double?) {
        index += 1
        if let value { sqlite3_bind_double(raw, index, value) } else { sqlite3_bind_null(raw, index) }
    }

    /// Runs the statement once with the values bound, then unbinds them for the next row and
    /// gives the arena's bytes back (SQLite no longer points into them).
    mutating func step() throws {
        precondition(index == sqlite3_bind_parameter_count(raw), "bound \(index) of \(sqlite3_bind_parameter_count(raw)) parameters")
        let code = sqlite3_step(raw)
        let message = code == SQLITE_DONE ? nil : String(cString: sqlite3_errmsg(sqlite3_db_handle(raw)))
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
        arena.reuse()
        index = 0
        if let message {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
    }
}

/// Memory for the text a ``DirectBinding`` binds: bytes stay where they were put until
/// ``reuse()``, which the binding calls once its statement has run and is unbound. It grows by
/// whole chunks and never moves what it holds, so every pointer bound for one run stays good
/// while later values are added. One arena serves one write transaction, on one thread, and one
/// statement's bindings at a time: ``reuse()`` gives everything back.
final class BindingArena {
    private var chunks: [UnsafeMutableRawBufferPointer] = []
    /// The chunk being filled, and how much of it is used.
    private var current = 0
    private var used = 0
    private let chunkSize: Int

    /// - Parameter chunkSize: bytes per chunk; a longer text gets a chunk of its own size.
    init(chunkSize: Int = 64 * 1024) {
        self.chunkSize = chunkSize
    }

    deinit {
        for chunk in chunks { chunk.deallocate() }
    }

    /// Copies `bytes` in and returns where they now lie, valid until ``reuse()``. An empty text
    /// gets a valid address too: SQLite binds NULL for a null pointer.
    func keep(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeRawBufferPointer {
        keep(count: bytes.count) { room in
            if let source = bytes.baseAddress, !bytes.isEmpty { room.baseAddress!.copyMemory(from: source, byteCount: bytes.count) }
            return true
        }!
    }

    /// Lets `fill` write `count` bytes in place and returns where they lie, valid until
    /// ``reuse()``; nil, with the room given back, when `fill` returns false.
    func keep(count: Int, _ fill: (UnsafeMutableRawBufferPointer) -> Bool) -> UnsafeRawBufferPointer? {
        while current < chunks.count, chunks[current].count - used < max(count, 1) {
            current += 1
            used = 0
        }
        if current == chunks.count {
            chunks.append(.allocate(byteCount: max(chunkSize, count), alignment: 1))
            used = 0
        }
        let room = UnsafeMutableRawBufferPointer(rebasing: chunks[current][used..<(used + count)])
        guard fill(room) else { return nil }
        used += count
        return UnsafeRawBufferPointer(room)
    }

    /// Makes all the memory available again; what was kept before must no longer be read.
    func reuse() {
        current = 0
        used = 0
    }

    /// Chunks allocated so far, for tests.
    var chunkCount: Int { chunks.count }
}
