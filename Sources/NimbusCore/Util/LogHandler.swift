import Logging

/// swift-log's stream handler (standard error), with the metadata formatted when a line is
/// written rather than each time a key is set. Every request sets three or four keys (the
/// request id, the caller) and almost none logs a line, so the stock handler's formatting on
/// each set was a visible share of a request's cost.
public struct NimbusLogHandler: LogHandler {
    private var stream: StreamLogHandler
    public var metadata = Logger.Metadata()

    public init(label: String) { stream = .standardError(label: label) }

    public var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var stream = stream
        stream.metadata = metadata
        stream.log(event: event)
    }
}
