import GRDB
import GRDBSQLite

/// Binds a cached statement's parameters with SQLite's own calls and steps it, for the one
/// statement run per stored comparison.
///
/// GRDB's `execute(arguments:)` boxes every value into a `DatabaseValue` inside a
/// `StatementArguments` array and nests a closure per string to bind it without a copy; per
/// comparison that cost more than SQLite's own work for the row. Here each value goes straight
/// to `sqlite3_bind_*`, and SQLite copies the text (`SQLITE_TRANSIENT`). Used inside a GRDB
/// write transaction on a statement from `cachedStatement(sql:)`; GRDB still owns the
/// connection, the transaction and the statement.
struct DirectBinding {
    private let statement: Statement
    private var raw: OpaquePointer { statement.sqliteStatement }
    private var index: Int32 = 0

    /// SQLite's "copy the bytes now" destructor.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    /// Bound for an empty string: a null pointer would bind NULL.
    private static let empty: [CChar] = [0]

    init(_ statement: Statement) throws {
        self.statement = statement
        let code = sqlite3_reset(statement.sqliteStatement)
        guard code == SQLITE_OK else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(sqlite3_db_handle(statement.sqliteStatement))))
        }
    }

    mutating func bind(_ text: String?) {
        index += 1
        guard var text else {
            sqlite3_bind_null(raw, index)
            return
        }
        let raw = self.raw
        let index = self.index
        text.withUTF8 { utf8 in
            _ = utf8.withMemoryRebound(to: CChar.self) { chars in
                if let address = chars.baseAddress {
                    sqlite3_bind_text(raw, index, address, Int32(chars.count), Self.transient)
                } else {
                    Self.empty.withUnsafeBufferPointer { sqlite3_bind_text(raw, index, $0.baseAddress, 0, Self.transient) }
                }
            }
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

    /// Runs the statement once with the values bound, then unbinds them for the next row.
    mutating func step() throws {
        precondition(index == sqlite3_bind_parameter_count(raw), "bound \(index) of \(sqlite3_bind_parameter_count(raw)) parameters")
        let code = sqlite3_step(raw)
        guard code == SQLITE_DONE else {
            let message = String(cString: sqlite3_errmsg(sqlite3_db_handle(raw)))
            sqlite3_reset(raw)
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: message, sql: statement.sql)
        }
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
        index = 0
    }
}
