import Foundation
import StranglerControl
import StranglerProxy

/// The dashboard's files (Sources/StranglerAdmin/Dashboard), read once from the module's
/// resource bundle and served as they are: no build step, no CDN.
enum DashboardAssets {
    struct Asset: Sendable {
        let path: String
        let contentType: String
        let bytes: [UInt8]
    }

    static let all: [Asset] = [
        load("index", "html", at: "/", type: "text/html; charset=utf-8"),
        load("dashboard", "css", at: "/dashboard.css", type: "text/css; charset=utf-8"),
        load("dashboard", "js", at: "/dashboard.js", type: "text/javascript; charset=utf-8"),
    ]

    private static func load(_ name: String, _ ext: String, at path: String, type: String) -> Asset {
        let url = Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Dashboard")
        let bytes =
            url.flatMap { try? Data(contentsOf: $0) }.map { [UInt8]($0) }
            ?? Array("dashboard file \(name).\(ext) is missing from this build's resources".utf8)
        return Asset(path: path, contentType: type, bytes: bytes)
    }
}
