import Foundation
import NIOSSL
import StranglerCore
import StranglerTestSupport
import Testing

@testable import StranglerProxy

/// The decisions of the certificate reload (no sockets, no clock) and what loading the files
/// says about bad ones.
@Suite("Listener TLS: reload decisions and file checks")
struct ListenerTLSWatchTests {
    private static func stamp(_ inode: UInt64) -> FileStamp {
        let file = FileStamp.File(exists: true, device: 1, inode: inode, size: 100, modifiedSeconds: 1, modifiedNanoseconds: 0)
        return FileStamp(files: [file, file])
    }

    @Test("a change is reloaded once two polls in a row see it, and only once")
    func changeSettlesBeforeReload() {
        var watch = ListenerTLSWatch(live: Self.stamp(1))
        #expect(watch.polled(Self.stamp(1)) == .keep)
        #expect(watch.polled(Self.stamp(2)) == .keep)
        #expect(watch.polled(Self.stamp(2)) == .reload)
        watch.loaded(Self.stamp(2))
        #expect(watch.polled(Self.stamp(2)) == .keep)
        #expect(watch.live == Self.stamp(2))
    }

    @Test("a file written between two polls restarts the wait: the certificate is not paired with the old key")
    func secondWriteRestartsTheWait() {
        var watch = ListenerTLSWatch(live: Self.stamp(1))
        #expect(watch.polled(Self.stamp(2)) == .keep)  // the certificate was written
        #expect(watch.polled(Self.stamp(3)) == .keep)  // then the key
        #expect(watch.polled(Self.stamp(3)) == .reload)
    }

    @Test("files changed back before they settled are not reloaded")
    func changedBack() {
        var watch = ListenerTLSWatch(live: Self.stamp(1))
        #expect(watch.polled(Self.stamp(2)) == .keep)
        #expect(watch.polled(Self.stamp(1)) == .keep)
        #expect(watch.polled(Self.stamp(1)) == .keep)
    }

    @Test("files that failed to load are not read again until they change; SIGHUP reads them anyway")
    func failedFilesWaitForAChange() {
        var watch = ListenerTLSWatch(live: Self.stamp(1))
        _ = watch.polled(Self.stamp(2))
        #expect(watch.polled(Self.stamp(2)) == .reload)
        watch.loadFailed(Self.stamp(2))
        #expect(watch.polled(Self.stamp(2)) == .keep)
        #expect(watch.polled(Self.stamp(2)) == .keep)
        #expect(watch.forced() == .reload)
        watch.loadFailed(Self.stamp(2))
        #expect(watch.polled(Self.stamp(3)) == .keep)
        #expect(watch.polled(Self.stamp(3)) == .reload)
        watch.loaded(Self.stamp(3))
        #expect(watch.live == Self.stamp(3))
    }

    @Test("the stamp sees a file replaced by rename, and a missing file")
    func stampSeesRenameAndMissing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stamp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("cert.pem")
        let missing = FileStamp(paths: [file.path])
        #expect(missing.files == [.missing])
        try Data("one".utf8).write(to: file)
        let first = FileStamp(paths: [file.path])
        #expect(first != missing)
        #expect(FileStamp(paths: [file.path]) == first)
        // Same size, written within the same instant as far as a coarse clock knows: the new
        // inode still tells.
        let next = directory.appendingPathComponent("cert.pem.new")
        try Data("two".utf8).write(to: next)
        try renameFile(next, over: file)
        #expect(FileStamp(paths: [file.path]) != first)
    }

    @Test("good files load with TLS 1.2 at least and ALPN http/1.1")
    func loadsGoodFiles() throws {
        let fixtures = TLSFixtures.shared
        let certificate = try ListenerCertificate(
            loading: ListenerTLS(certificateFile: fixtures.server.certificateFile.path, keyFile: fixtures.server.keyFile.path)
        )
        #expect(certificate.leaf.serialNumber == fixtures.server.certificate.serialNumber)
        #expect(certificate.configuration.minimumTLSVersion == .tlsv12)
        #expect(certificate.configuration.applicationProtocols == ["http/1.1"])
        #expect(certificate.configuration.certificateVerification == .none)

        let mutual = try ListenerCertificate(
            loading: ListenerTLS(
                certificateFile: fixtures.server.certificateFile.path,
                keyFile: fixtures.server.keyFile.path,
                clientCAFile: fixtures.ca.certificateFile.path
            )
        )
        #expect(mutual.configuration.certificateVerification == .noHostnameVerification)
    }

    @Test("each bad file is named with its cause")
    func badFilesAreNamed() throws {
        let fixtures = TLSFixtures.shared
        let server = fixtures.server
        let missing = fixtures.directory.appendingPathComponent("no-such.pem").path
        let cases: [(ListenerTLS, ListenerTLSError)] = [
            (
                ListenerTLS(certificateFile: missing, keyFile: server.keyFile.path),
                ListenerTLSError(.certificate, path: missing, cause: .missing)
            ),
            (
                ListenerTLS(certificateFile: server.keyFile.path, keyFile: server.keyFile.path),
                ListenerTLSError(.certificate, path: server.keyFile.path, cause: .noCertificate)
            ),
            (
                ListenerTLS(certificateFile: server.certificateFile.path, keyFile: missing),
                ListenerTLSError(.key, path: missing, cause: .missing)
            ),
            (
                ListenerTLS(certificateFile: server.certificateFile.path, keyFile: server.certificateFile.path),
                ListenerTLSError(.key, path: server.certificateFile.path, cause: .noPrivateKey)
            ),
            (
                ListenerTLS(certificateFile: server.certificateFile.path, keyFile: fixtures.client.keyFile.path),
                ListenerTLSError(.key, path: fixtures.client.keyFile.path, cause: .keyMismatch(certificateFile: server.certificateFile.path))
            ),
            (
                ListenerTLS(certificateFile: server.certificateFile.path, keyFile: server.keyFile.path, clientCAFile: server.keyFile.path),
                ListenerTLSError(.clientCA, path: server.keyFile.path, cause: .noCertificate)
            ),
        ]
        for (tls, expected) in cases {
            #expect(throws: expected) { try ListenerCertificate(loading: tls) }
        }
        let mismatch = ListenerTLSError(.key, path: "key.pem", cause: .keyMismatch(certificateFile: "cert.pem"))
        #expect(mismatch.description == "the key file key.pem is not the private key of the certificate in cert.pem")
    }
}
