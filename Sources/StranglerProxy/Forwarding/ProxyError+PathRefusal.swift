import StranglerCore

extension ProxyError {
    /// The answer to a request whose target can't be routed safely (``TargetRouter``): 400,
    /// before any upstream sees it.
    init(refusingTarget error: any Error) {
        self = .badRequest("\(error); it was not forwarded")
    }
}
