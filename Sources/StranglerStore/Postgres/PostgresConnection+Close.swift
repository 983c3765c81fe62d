import PostgresNIO

extension PostgresConnection {
    /// Closes the connection without waiting for it, and keeps it alive until it is closed:
    /// PostgresNIO requires a connection to be closed before it is released, and a caller that
    /// must not wait (a shutdown, a timed-out check) drops its reference at once.
    func closeInBackground() {
        close().whenComplete { _ in withExtendedLifetime(self) {} }
    }
}
