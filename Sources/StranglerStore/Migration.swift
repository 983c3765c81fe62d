import Foundation
import StranglerCore

/// One numbered SQL file from `migrations/`: `0001_comparisons.sql`.
public struct Migration: Sendable, Hashable {
    /// The number, from the file name's leading digits.
    public var version: Int
    /// The file name, e.g. `0001_comparisons.sql`.
    public var name: String
    /// The SQL, run as one script inside a transaction.
    public var sql: String
    /// A hash of `sql`, recorded when applied, so an edited applied file is caught.
    public var checksum: String

    /// A migration from its file; the checksum is computed from `sql`.
    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = ContentHash.hex(of: sql.utf8)
    }

    /// Reads the migrations for `dialect` from `directory`. Shared files live at the top of the
    /// directory; a file of the same number in the dialect's subfolder (`sqlite/`, `postgres/`)
    /// replaces the shared one. Throws on duplicate or unparseable numbers.
    public static func load(directory: String, dialect: String = "sqlite") throws(MigrationError) -> [Migration] {
        var byVersion: [Int: Migration] = [:]
        var fromDialect: Set<Int> = []
        let manager = FileManager.default
        guard manager.fileExists(atPath: directory) else {
            throw .missingDirectory(directory)
        }
        for (folder, isDialect) in [(directory, false), ((directory as NSString).appendingPathComponent(dialect), true)] {
            guard let names = try? manager.contentsOfDirectory(atPath: folder) else { continue }
            for name in names.sorted() where name.hasSuffix(".sql") {
                let digits = name.prefix { $0.isNumber }
                guard !digits.isEmpty, let version = Int(digits), name.dropFirst(digits.count).hasPrefix("_") else {
                    throw .badName(name)
                }
                let path = (folder as NSString).appendingPathComponent(name)
                guard let sql = try? String(contentsOfFile: path, encoding: .utf8) else { throw .unreadable(path) }
                if let existing = byVersion[version], !isDialect || fromDialect.contains(version) {
                    throw .duplicateVersion(version, existing.name, name)
                }
                byVersion[version] = Migration(version: version, name: name, sql: sql)
                if isDialect { fromDialect.insert(version) }
            }
        }
        return byVersion.values.sorted { $0.version < $1.version }
    }
}

/// Why migrations could not be loaded or applied. Each case says what to do.
public enum MigrationError: Error, Sendable, CustomStringConvertible {
    /// There is no migrations directory at this path.
    case missingDirectory(String)
    /// A `.sql` file whose name is not `NNNN_description.sql`.
    case badName(String)
    /// The file at this path could not be read, or is not UTF-8.
    case unreadable(String)
    /// Two files have the same number: the number, then both file names.
    case duplicateVersion(Int, String, String)
    /// An applied migration's file changed since: the checksum recorded and the file's now. An
    /// applied file is never edited; a change is a new numbered file.
    case edited(name: String, recorded: String, now: String)
    /// The store has a migration applied that this build does not know: a newer build applied it.
    case unknownApplied(version: Int, name: String)
    /// A migration's SQL failed; its transaction was rolled back.
    case failed(name: String, underlying: String)
    /// The store could not be opened, or its record of applied migrations not read.
    case storeUnavailable(path: String, underlying: String)

    /// What went wrong and what to do about it, for the CLI and the log.
    public var description: String {
        switch self {
        case .missingDirectory(let path):
            "no migrations directory at \(path); pass --migrations DIR (the repository's migrations/ folder)"
        case .badName(let name):
            "\(name): migration files are named NNNN_description.sql"
        case .unreadable(let path):
            "cannot read \(path)"
        case .duplicateVersion(let version, let first, let second):
            "migration number \(version) is used twice (\(first), \(second)); give the newer one the next number"
        case .edited(let name, let recorded, let now):
            "\(name) was edited after it was applied (checksum \(recorded) → \(now)); revert the edit and add a new numbered migration instead"
        case .unknownApplied(let version, let name):
            "the store has migration \(version) (\(name)) applied, which this build does not know; use a newer strangler"
        case .failed(let name, let underlying):
            "\(name) failed and was rolled back: \(underlying)"
        case .storeUnavailable(let path, let underlying):
            "cannot open the store at \(path): \(underlying)"
        }
    }
}
