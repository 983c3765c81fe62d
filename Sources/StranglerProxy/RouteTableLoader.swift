import Foundation
import StranglerCore

/// Reads and validates a route table file.
public enum RouteTableLoader {
    /// Loads `path`. Every failure is a ``RouteTableError`` that says what to fix.
    public static func load(path: String) throws(RouteTableError) -> RouteTable {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RouteTableError(problems: [
                .init(path: "$", message: "cannot read \(path): \((error as NSError).localizedDescription); pass the route table with --routes PATH")
            ])
        }
        return try RouteTable.parse(data)
    }
}
