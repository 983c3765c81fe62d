import ArgumentParser
import Foundation
import StranglerAdmin
import StranglerControl
import StranglerCore
import StranglerStore

extension Routes {
    /// `strangler routes import FILE`
    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a route table file into where the table lives: the shared database, or the routes file.",
            discussion: """
                The file is validated first; an invalid one changes nothing and every problem is
                printed with its JSON path. Every route that differs is recorded in the audit trail.
                With a postgres:// store this is how the first table gets into an empty database,
                and every instance applies the new table within a second. Gates do not apply: an
                import is a reviewed file, not a promotion step.

                --expect-version makes the import refuse (exit 1, nothing changed) if the table is
                no longer that version, for example because someone flipped a route meanwhile.

                Examples:
                  strangler routes import routes.json --store postgres://strangler@db:5432/strangler
                  STRANGLER_STORE=postgres://strangler@db/strangler strangler routes import deploy/routes.json --reason "release 42"
                  strangler routes import next.json --routes routes.json      # replace the routes file, audited
                """
        )

        @Argument(help: "The route table file to load.")
        var file: String

        @Option(help: "Why; recorded in the audit trail (default: \"imported\").")
        var reason: String?

        @Option(help: "Refuse unless the current table is this version (a content hash, as `routes history` shows).")
        var expectVersion: String?

        @OptionGroup var options: ControlOptions

        func run() async throws {
            if options.admin != nil {
                throw ValidationError("import acts on the store directly; drop --admin and give --store")
            }
            let data: Data
            do {
                _ = try RouteTableLoader.load(path: file)
                data = try RouteTableLoader.read(path: file)
            } catch {
                printError("\(file) is not a valid route table; nothing was imported:\n" + error.terminalLines.joined(separator: "\n"))
                throw ExitCode(1)
            }
            let controller = try await options.makeController()
            do {
                let result = try await controller.importTable(
                    data,
                    by: .init(actor: options.actor ?? OperatingUser.name, source: .cli, reason: reason),
                    expecting: expectVersion
                )
                print(RoutesOutput.operation(OperationDocument(result)))
                await StoreLocation.close(controller.store)
            } catch {
                await StoreLocation.close(controller.store)
                printError(error.message)
                throw ExitCode(1)
            }
        }
    }

    /// `strangler routes export`
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the current route table, byte for byte, to standard output or a file.",
            discussion: """
                With a postgres:// store this is the table every instance serves: commit it to git
                to keep changes made through the API or by auto-demote. The version printed on
                standard error is the content hash the audit trail and --expect-version use.

                Examples:
                  strangler routes export --store postgres://strangler@db:5432/strangler > routes.json
                  strangler routes export --output deploy/routes.json
                """
        )

        @Option(help: "Write here (atomically) instead of standard output.")
        var output: String?

        @OptionGroup var options: ControlOptions

        func run() async throws {
            if options.admin != nil {
                throw ValidationError("export reads the store directly; drop --admin and give --store")
            }
            let controller = try await options.makeController()
            let data: Data
            do {
                data = try await controller.currentTable()
                await StoreLocation.close(controller.store)
            } catch {
                await StoreLocation.close(controller.store)
                printError(error.message)
                throw ExitCode(1)
            }
            if let output {
                let temporary = output + ".\(ProcessInfo.processInfo.processIdentifier).tmp"
                do {
                    try data.write(to: URL(fileURLWithPath: temporary))
                    _ = try FileManager.default.replaceItemAt(URL(fileURLWithPath: output), withItemAt: URL(fileURLWithPath: temporary))
                } catch {
                    try? FileManager.default.removeItem(atPath: temporary)
                    printError("cannot write \(output): \(error.localizedDescription)")
                    throw ExitCode(1)
                }
            } else {
                FileHandle.standardOutput.write(data)
            }
            printError("table version \(ContentHash.hex(of: data)) from \(controller.routesPath)")
        }
    }
}
