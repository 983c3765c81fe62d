import Foundation
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A process the tests start with `posix_spawn`, in place of Foundation's `Process`.
///
/// On Linux, `Process.run()` lists `/proc/self/fd` to find the descriptors to close in the
/// child, and crashes copying a directory entry (`findMaximumOpenFromProcSelfFD`) when the test
/// process has many descriptors open, as the full suite does; starting processes one at a time
/// does not avoid it. Here the child closes every descriptor above standard error itself
/// (`posix_spawn_file_actions_addclosefrom_np`), so nothing is listed in the parent, and a
/// server a command leaves running (`pg_ctl start`) holds none of the test's sockets or pipes.
///
/// Output goes to files, never pipes: a server that outlives the command would hold a pipe's
/// write end and a reader would never see its end.
package final class ChildProcess: Sendable {
    /// Where the child's standard output or standard error goes.
    package enum Output: Sendable {
        /// Appended to this file, created if missing.
        case file(String)
        /// Discarded.
        case discard
    }

    /// The process id.
    package let pid: pid_t
    /// The wait status once the child has been reaped; reaping happens once, under the lock, so
    /// `isRunning` and `waitUntilExit()` on different threads never race for the same child.
    private let reaped = NIOLockedValueBox<Int32?>(nil)

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Starts `executable` (an absolute path) with `arguments`, exactly `environment`, standard
    /// input from `/dev/null`, and every other inherited descriptor closed.
    /// - Parameters:
    ///   - directory: the child's working folder; the test's when nil.
    ///   - output: standard output's destination.
    ///   - errors: standard error's destination; nil sends it where standard output goes.
    package static func spawn(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String],
        directory: String? = nil,
        output: Output,
        errors: Output? = nil
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        try check(posix_spawn_file_actions_init(&actions), "posix_spawn_file_actions_init")
        defer { posix_spawn_file_actions_destroy(&actions) }
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "redirecting standard input")
        try redirect(&actions, 1, to: output)
        if let errors {
            try redirect(&actions, 2, to: errors)
        } else {
            try check(posix_spawn_file_actions_adddup2(&actions, 1, 2), "sending standard error to standard output")
        }
        #if os(Linux)
        try check(GlibcSpawnExtensions.closeFrom(&actions, 3), "closing inherited descriptors")
        if let directory {
            try check(GlibcSpawnExtensions.changeDirectory(&actions, directory), "changing to \(directory)")
        }
        #else
        if let directory {
            try check(posix_spawn_file_actions_addchdir_np(&actions, directory), "changing to \(directory)")
        }
        #endif

        // Default dispositions and an empty mask, whatever this thread ignores or blocks.
        var attributes = posix_spawnattr_t()
        try check(posix_spawnattr_init(&attributes), "posix_spawnattr_init")
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        try check(posix_spawnattr_setsigdefault(&attributes, &all), "posix_spawnattr_setsigdefault")
        try check(posix_spawnattr_setsigmask(&attributes, &none), "posix_spawnattr_setsigmask")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)), "posix_spawnattr_setflags")

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw ChildProcessError("could not start \(executable): \(String(cString: strerror(status)))")
        }
        return ChildProcess(pid: pid)
    }

    /// Runs a command to its end and returns its exit status with what it wrote.
    /// - Parameter mergeErrors: send standard error into `output` (in order) rather than `errors`.
    package static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String],
        directory: String? = nil,
        mergeErrors: Bool = false
    ) throws -> (status: Int32, output: Data, errors: Data) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("strangler-child-\(UUID().uuidString)").path
        let outputPath = base + ".out"
        let errorsPath = base + ".err"
        defer {
            unlink(outputPath)
            unlink(errorsPath)
        }
        let child = try spawn(
            executable,
            arguments,
            environment: environment,
            directory: directory,
            output: .file(outputPath),
            errors: mergeErrors ? nil : .file(errorsPath)
        )
        let status = child.waitUntilExit()
        let output = FileManager.default.contents(atPath: outputPath) ?? Data()
        let errors = FileManager.default.contents(atPath: errorsPath) ?? Data()
        return (status, output, errors)
    }

    /// Whether the child still runs (it is reaped when it has exited).
    package var isRunning: Bool {
        reap() == nil
    }

    /// The exit status, or the number of the signal that ended it; nil while it runs.
    package var terminationStatus: Int32? {
        reap().map(Self.exitCode)
    }

    /// Waits for the child to exit and returns its exit status, or the number of the signal
    /// that ended it.
    @discardableResult
    package func waitUntilExit() -> Int32 {
        // Polling rather than one blocking waitpid: the lock is never held while the child runs,
        // so `isRunning` on another thread answers at once.
        while true {
            if let status = reap() { return Self.exitCode(status) }
            usleep(5_000)
        }
    }

    /// Sends `signal` unless the child has been reaped (its pid may belong to another process by then).
    package func send(_ signal: Int32) {
        reaped.withLockedValue { status in
            if status == nil { kill(pid, signal) }
        }
    }

    private func reap() -> Int32? {
        reaped.withLockedValue { reaped in
            if let reaped { return reaped }
            var status: Int32 = 0
            while true {
                let result = waitpid(pid, &status, WNOHANG)
                if result == pid {
                    reaped = status
                    return status
                }
                if result == 0 { return nil }
                if errno == EINTR { continue }
                // ECHILD: not ours to wait for any more; report it as gone.
                reaped = -1
                return -1
            }
        }
    }

    private static func exitCode(_ status: Int32) -> Int32 {
        if status == -1 { return -1 }
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : signal
    }

    private static func redirect(_ actions: inout posix_spawn_file_actions_t, _ descriptor: Int32, to output: Output) throws {
        switch output {
        case .file(let path):
            try check(
                posix_spawn_file_actions_addopen(&actions, descriptor, path, O_WRONLY | O_CREAT | O_APPEND, 0o644),
                "sending descriptor \(descriptor) to \(path)"
            )
        case .discard:
            try check(posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", O_WRONLY, 0), "discarding descriptor \(descriptor)")
        }
    }

    private static func check(_ result: Int32, _ doing: String) throws {
        guard result == 0 else { throw ChildProcessError("\(doing) failed: \(String(cString: strerror(result)))") }
    }
}

#if os(Linux)
/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) and `…_addchdir_np` (2.29), looked
/// up at run time: Swift's Glibc module imports `spawn.h` without `_GNU_SOURCE`, which hides them.
private enum GlibcSpawnExtensions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChangeDirectory = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static func closeFrom(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ lowest: Int32) -> Int32 {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return ENOSYS }
        return unsafeBitCast(symbol, to: CloseFrom.self)(actions, lowest)
    }

    static func changeDirectory(_ actions: UnsafeMutablePointer<posix_spawn_file_actions_t>, _ path: String) -> Int32 {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return ENOSYS }
        return path.withCString { unsafeBitCast(symbol, to: ChangeDirectory.self)(actions, $0) }
    }
}
#endif

/// A process could not be started.
package struct ChildProcessError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
