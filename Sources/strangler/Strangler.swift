import ArgumentParser

/// `strangler`: the StranglerFig command line.
@main
struct Strangler: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strangler",
        abstract: "A reverse proxy for strangler-fig migrations: route, shadow and compare, one endpoint at a time.",
        discussion: """
            Examples:
              strangler demo                          # legacy OMS + extracted services + proxy + admin
              strangler serve --routes routes.json    # the proxy in front of your monolith
              strangler routes validate routes.json   # check a route table before you commit it
              strangler routes promote inventory-read # one step along the lifecycle, gated by evidence
              strangler report --format html --output report.html
              strangler diffs accept order-read /LEGACY_ROW_ID --reason "legacy-only key"

            Exit codes: 0 ok, 1 refused or failed, 64 usage error.
            """,
        subcommands: [Serve.self, Demo.self, Routes.self, ReportCommand.self, Diffs.self, Migrate.self]
    )
}
