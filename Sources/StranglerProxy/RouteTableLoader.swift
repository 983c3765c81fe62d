import Foundation
import StranglerCore

/// Reads and validates a route table file.
public enum RouteTableLoader {
    /// Largest file read: a 90,000-route table is about 10 MB. A larger file is refused before
    /// it is read, so a mistaken path (a log, a disk image) cannot fill the proxy's memory.
    public static let maxFileBytes = 64 << 20

    /// Loads `path`. Every failure is a ``RouteTableError`` that says what to fix.
    public static func load(path: String) throws(RouteTableError) -> RouteTable {
        try RouteTable.parse(try read(path: path))
    }

    /// The file's bytes, or a ``RouteTableError`` at `$` saying why they can't be read.
    public static func read(path: String) throws(RouteTableError) -> Data {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > maxFileBytes {
            throw RouteTableError(problems: [
                .init(path: "$", message: "\(path) is \(size) bytes; a route table may be at most \(maxFileBytes >> 20) MiB")
            ])
        }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RouteTableError(problems: [
                .init(path: "$", message: "cannot read \(path): \((error as NSError).localizedDescription); pass the route table with --routes PATH")
            ])
        }
    }
}
