import Foundation
import Testing

@testable import StranglerStore

/// The instance name rollups are kept under: made once, kept beside the store, the same after a
/// restart, and refused with a clear message when the file was edited into something invalid.
@Suite("Instance identity")
struct InstanceIdentityTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("instance-\(UUID().uuidString)").path
    }

    @Test("the first load makes a name from the host and keeps it; later loads read the same name")
    func stableAcrossRestarts() throws {
        let file = InstanceIdentity.file(besideSQLiteStore: Self.directory() + "/store.sqlite")
        #expect(file.hasSuffix("/store.sqlite.instance"))
        let first = try InstanceIdentity.load(from: file, hostName: "oms-proxy-2.prod.example")
        #expect(first.id.hasPrefix("oms-proxy-2-"))
        #expect(first.id.count == "oms-proxy-2-".count + 8)
        let again = try InstanceIdentity.load(from: file, hostName: "another-host")
        #expect(again == first, "a restart keeps its rows: the kept name wins over the host's")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == first.id + "\n")
    }

    @Test("two instances made on one host get different names")
    func distinctOnOneHost() throws {
        let one = try InstanceIdentity.load(from: Self.directory() + "/a.instance", hostName: "h")
        let two = try InstanceIdentity.load(from: Self.directory() + "/b.instance", hostName: "h")
        #expect(one != two)
    }

    @Test("a host name with no usable characters still makes a valid name")
    func oddHostName() {
        let id = InstanceIdentity.made(hostName: "ü@ü")
        #expect(id.hasPrefix("instance-"))
        #expect(InstanceIdentity.isValid(id))
    }

    @Test("an edited file with an invalid name is refused, naming the file and what to do")
    func invalidFile() throws {
        let directory = Self.directory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/store.sqlite.instance"
        try "has spaces in it\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: InstanceIdentityError.invalid(id: "has spaces in it", file: file)) {
            try InstanceIdentity.load(from: file)
        }
        let message = InstanceIdentityError.invalid(id: "has spaces in it", file: file).description
        #expect(message.contains(file) && message.contains("delete the file"))
        #expect(throws: InstanceIdentityError.self) { try InstanceIdentity(id: String(repeating: "a", count: 65)) }
        #expect(try InstanceIdentity(id: "proxy-a").id == "proxy-a")
    }

    @Test("a directory that can't be written gives an error naming the file")
    func unwritable() throws {
        let directory = Self.directory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // A regular file where the directory should be: nothing can be made under it.
        let blocker = directory + "/blocked"
        try "x".write(toFile: blocker, atomically: true, encoding: .utf8)
        do {
            _ = try InstanceIdentity.load(from: blocker + "/store.sqlite.instance")
            Issue.record("loading under a file should fail")
        } catch {
            guard case .unwritable(let file, _) = error else {
                Issue.record("expected unwritable, got \(error)")
                return
            }
            #expect(file == blocker + "/store.sqlite.instance")
        }
    }
}
