import Foundation
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Reading a route table file")
struct RouteTableLoaderTests {
    @Test("a FIFO or a directory is refused at once instead of being read without end")
    func notARegularFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("loader-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let fifo = folder.appendingPathComponent("routes.json").path
        #expect(mkfifo(fifo, 0o600) == 0)
        for path in [fifo, folder.path] {
            do {
                _ = try RouteTableLoader.read(path: path)
                Issue.record("\(path) was read")
            } catch {
                #expect(error.problems.first?.path == "$")
                #expect(error.problems.first?.message.contains("not a regular file") == true)
            }
        }
    }
}
