import Foundation
import StranglerCore
import StranglerProxy

/// Reads and validates a route table file.
public enum RouteTableLoader {
    /// Largest file read: a 90,000-route table is about 10 MB. A larger file is refused before
    /// it is read, so a mistaken path (a log, a disk image) cannot fill the proxy's memory.
    public static let maxFileBytes = 64 << 20

    /// Loads `path`. Every failure is a ``RouteTableError`` that says what to fix.
    public static func load(path: String) throws(RouteTableError) -> RouteTable {
        try RouteTable.parse(try read(path: path))
    }

    /// Loads `path` for a proxy to serve: ``load(path:)``, and then the certificate files of
    /// its `https` upstreams must exist and parse (relative paths are read from the file's
    /// folder). Each broken file is a problem at its JSON path (`upstreams.legacy.caFile`).
    public static func loadForServing(path: String) throws(RouteTableError) -> RouteTable {
        let table = try load(path: path)
        try checkUpstreamFiles(table, relativeTo: directory(of: path))
        return table
    }

    /// Refuses `table` when a certificate file of its `https` upstreams is missing or broken.
    public static func checkUpstreamFiles(_ table: RouteTable, relativeTo directory: String) throws(RouteTableError) {
        let problems = UpstreamTLSContexts(for: table, relativeTo: directory).problems
        if !problems.isEmpty { throw RouteTableError(problems: problems) }
    }

    /// The folder relative certificate paths of the table in `path` are read from.
    public static func directory(of path: String) -> String {
        URL(fileURLWithPath: path).deletingLastPathComponent().path
    }

    /// The file's bytes, or a ``RouteTableError`` at `$` saying why they can't be read.
    public static func read(path: String) throws(RouteTableError) -> Data {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
            // A FIFO or a device would be read without end.
            throw RouteTableError(problems: [.init(path: "$", message: "\(path) is not a regular file; a route table is a routes.json file")])
        }
        if let size = (attributes?[.size] as? NSNumber)?.intValue, size > maxFileBytes {
            throw tooLarge(path, size)
        }
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            // Bounded even if the file grew since it was measured.
            let data = try handle.read(upToCount: maxFileBytes + 1) ?? Data()
            if data.count > maxFileBytes { throw tooLarge(path, data.count) }
            return data
        } catch let error as RouteTableError {
            throw error
        } catch {
            throw RouteTableError(problems: [
                .init(path: "$", message: "cannot read \(path): \((error as NSError).localizedDescription); check the path and its permissions")
            ])
        }
    }

    private static func tooLarge(_ path: String, _ size: Int) -> RouteTableError {
        RouteTableError(problems: [
            .init(path: "$", message: "\(path) is \(size) bytes or more; a route table may be at most \(maxFileBytes >> 20) MiB")
        ])
    }
}
