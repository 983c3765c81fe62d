import Foundation

/// The name a proxy instance writes its rollups under, stable across restarts.
///
/// Rollups are kept per route, per minute and per instance, so that several proxies sharing one
/// store each add to their own rows and a restart continues the same rows rather than starting
/// a second set. The name is made once (the host's name and eight random hex digits, so two
/// instances on one host differ) and kept in a small file beside the store.
public struct InstanceIdentity: Sendable, Equatable, CustomStringConvertible {
    /// The instance's name: letters, digits, `.`, `_` and `-`, at most 64 characters.
    public let id: String

    /// The file holding a SQLite store's instance name: beside the database, named after it.
    public static func file(besideSQLiteStore path: String) -> String {
        path + ".instance"
    }

    /// An identity from a name given by an operator, checked.
    public init(id: String) throws(InstanceIdentityError) {
        guard Self.isValid(id) else { throw .invalid(id: id, file: nil) }
        self.id = id
    }

    private init(checked id: String) {
        self.id = id
    }

    /// The instance's name.
    public var description: String { id }

    /// The name kept in `file`, made and kept there first if the file does not exist yet.
    public static func load(from file: String, hostName: String = ProcessInfo.processInfo.hostName) throws(InstanceIdentityError) -> InstanceIdentity
    {
        let manager = FileManager.default
        if manager.fileExists(atPath: file) {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw .unreadable(file: file, underlying: "\(error)")
            }
            let id = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard isValid(id) else { throw .invalid(id: id, file: file) }
            return InstanceIdentity(checked: id)
        }
        let identity = InstanceIdentity(checked: made(hostName: hostName))
        do {
            try manager.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            // Written whole or not at all: a crash mid-write must not leave half a name.
            try Data((identity.id + "\n").utf8).write(to: URL(fileURLWithPath: file), options: .atomic)
        } catch {
            throw .unwritable(file: file, underlying: "\(error)")
        }
        return identity
    }

    /// A new name: the host's first label, cleaned to the allowed characters, and eight random
    /// hex digits.
    static func made(hostName: String) -> String {
        let label = hostName.split(separator: ".").first.map(String.init) ?? ""
        let cleaned = String(label.unicodeScalars.filter(isAllowed).prefix(40).map(Character.init))
        let suffix = String(format: "%08x", UInt32.random(in: .min ... .max))
        return cleaned.isEmpty ? "instance-\(suffix)" : "\(cleaned)-\(suffix)"
    }

    static func isValid(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.unicodeScalars.allSatisfy(isAllowed)
    }

    private static func isAllowed(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "." || scalar == "_" || scalar == "-")
    }
}

/// Why an instance name could not be had.
public enum InstanceIdentityError: Error, Equatable, CustomStringConvertible {
    /// The name is empty, too long or has characters other than letters, digits, `.`, `_`, `-`;
    /// `file` is the file it was read from, nil when it was given (`--instance-id`).
    case invalid(id: String, file: String?)
    /// The file exists but could not be read.
    case unreadable(file: String, underlying: String)
    /// The file did not exist and could not be written.
    case unwritable(file: String, underlying: String)

    public var description: String {
        switch self {
        case .invalid(let id, nil):
            return "instance id \"\(id)\" is not valid: use 1 to 64 letters, digits, '.', '_' or '-', or leave it out to have one made"
        case .invalid(let id, let file?):
            return
                "instance id \"\(id)\" from \(file) is not valid: use 1 to 64 letters, digits, '.', '_' or '-' (delete the file to have a new id made)"
        case .unreadable(let file, let underlying):
            return "cannot read the instance id file \(file): \(underlying); check its permissions"
        case .unwritable(let file, let underlying):
            return "cannot write the instance id file \(file): \(underlying); check that the store's directory is writable"
        }
    }
}
