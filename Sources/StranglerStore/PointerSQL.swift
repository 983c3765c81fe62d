import GRDB
import StranglerCore

/// SQL functions over JSON pointers, registered on every connection of the store.
enum PointerSQL {
    /// `pointer_covers(pattern, pointer)`: whether an accepted-difference pattern covers a stored
    /// pointer (itself or anything under it; `*` for any one segment), as ``PointerPattern`` does.
    static let covers = DatabaseFunction("pointer_covers", argumentCount: 2, pure: true) { values in
        guard let pattern = String.fromDatabaseValue(values[0]), let pointer = String.fromDatabaseValue(values[1]) else {
            return false
        }
        guard pointer.hasPrefix("/") || pointer.isEmpty else { return false }
        let segments = pointer.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        return PointerPattern(pattern).covers(segments)
    }
}
