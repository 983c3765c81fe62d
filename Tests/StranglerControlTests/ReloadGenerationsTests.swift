import StranglerTestSupport
import Testing

@testable import StranglerControl
@testable import StranglerProxy

@Suite("Reload generations: the latest look at the routes file wins")
struct ReloadGenerationsTests {
    @Test("a newer edit supersedes one still being validated; the older never goes live, the newer does")
    func newerSupersedesOlder() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .validate(1))
        #expect(generations.look(found: "v2", live: "v0", rejected: nil, force: false) == .validate(2))
        #expect(generations.mayInstall(1) == false)
        #expect(generations.mayInstall(2) == true)
        generations.installed(2)
        // Finishing after the newer one changes nothing either.
        #expect(generations.mayInstall(1) == false)
    }

    @Test("a look that finds the content already on its way waits for it instead of validating again")
    func sameContentJoins() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .validate(1))
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: true) == .join(1))
        #expect(generations.mayInstall(1) == true)
        // While it is installed, a look at the same content waits for that installation.
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .join(1))
        generations.installed(1)
        #expect(generations.look(found: "v1", live: "v1", rejected: nil, force: false) == .unchanged)
    }

    @Test("an edit back to the live table while another is validated drops that one")
    func revertToLiveSupersedes() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .validate(1))
        #expect(generations.look(found: "v0", live: "v0", rejected: nil, force: false) == .unchanged)
        #expect(generations.mayInstall(1) == false)
    }

    @Test("an edit back to the live table while another is installed installs the live one again after it")
    func revertWhileInstalling() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .validate(1))
        #expect(generations.mayInstall(1) == true)
        #expect(generations.look(found: "v0", live: "v0", rejected: nil, force: false) == .validate(2))
        generations.installed(1)
        #expect(generations.mayInstall(2) == true)
    }

    @Test("the content being installed, found again after a newer edit, supersedes that edit")
    func backToInstallingSupersedesNewer() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .validate(1))
        #expect(generations.mayInstall(1) == true)
        #expect(generations.look(found: "v2", live: "v0", rejected: nil, force: false) == .validate(2))
        #expect(generations.look(found: "v1", live: "v0", rejected: nil, force: false) == .join(1))
        generations.installed(1)
        #expect(generations.mayInstall(2) == false)
    }

    @Test("content rejected before is validated again only when forced; a superseded rejection is not reported")
    func rejections() {
        var generations = ReloadGenerations()
        #expect(generations.look(found: "bad", live: "v0", rejected: "bad", force: false) == .rejectedBefore)
        #expect(generations.look(found: "bad", live: "v0", rejected: "bad", force: true) == .validate(2))
        #expect(generations.mayReject(2) == true)
        #expect(generations.look(found: "bad2", live: "v0", rejected: "bad", force: false) == .validate(3))
        #expect(generations.look(found: "v4", live: "v0", rejected: "bad", force: false) == .validate(4))
        #expect(generations.mayReject(3) == false)
        #expect(generations.mayInstall(4) == true)
    }
}
