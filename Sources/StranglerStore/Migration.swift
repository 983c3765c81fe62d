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
    case missingDirectory(String)
    case badName(String)
    case unreadable(String)
    case duplicateVersion(Int, String, String)
    case edited(name: String, recorded: String, now: String)
    case unknownApplied(version: Int, name: String)
    case failed(name: String, underlying: String)
    case storeUnavailable(path: String, underlying: String)

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
