import CStranglerScheduling
import Foundation
import NIOConcurrencyHelpers
import StranglerTestSupport
import Testing

@testable import StranglerProxy

@Suite("Thread scheduling: event loops ahead of background work")
struct ThreadSchedulingTests {
    /// Runs `body` on a new thread of normal priority and returns its result.
    static func onNewThread<Value: Sendable>(_ body: @escaping @Sendable () -> Value) -> Value {
        let done = ConditionLock(value: false)
        let result = NIOLockedValueBox<Value?>(nil)
        let thread = Thread {
            let value = body()
            result.withLockedValue { $0 = value }
            done.lock()
            done.unlock(withValue: true)
        }
        thread.start()
        done.lock(whenValue: true)
        done.unlock()
        return result.withLockedValue { $0! }
    }

    static func niceValue() -> Int32 {
        #if os(Linux)
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
        #else
        getpriority(PRIO_PROCESS, 0)
        #endif
    }

    @Test("background work runs at nice 10 on a thread of its own; the caller's priority is untouched")
    func backgroundWorkIsNiced() {
        let (caller, inside, after) = Self.onNewThread { () -> (Int32, Int32, Int32) in
            let caller = Self.niceValue()
            let inside = BackgroundWork.run { Self.niceValue() }
            return (caller, inside, Self.niceValue())
        }
        if caller <= BackgroundWork.niceness {
            #expect(inside == BackgroundWork.niceness)
        } else {
            // Already nicer: an unprivileged thread can't lower it to 10, a privileged one can.
            #expect(inside == caller || inside == BackgroundWork.niceness)
        }
        #expect(after == caller)
    }

    @Test("an event loop's short slice is granted where the kernel has custom slices (else ignored), and threads it starts get the default")
    func eventLoopSlice() {
        let (outcome, child) = Self.onNewThread { () -> (EventLoopSlice.Outcome, UInt64) in
            let outcome = EventLoopSlice.request(EventLoopSlice.standard)
            return (outcome, Self.onNewThread { c_strangler_thread_slice() })
        }
        switch outcome {
        case .granted(let nanoseconds):
            #expect(nanoseconds == 100_000)
            #expect(child != 100_000, "a thread started by an event loop must not keep its short slice")
        case .ignored:
            // A kernel before 6.12: nothing changed, for this thread or the next.
            #expect(child == 0)
        case .refused(let errno):
            // Not Linux, or the tests run under a real-time or idle policy; anything else is a
            // bug in the request.
            #expect(errno == ENOSYS || errno == EPERM, "errno \(errno)")
        }
    }
}
