/// The UDP transport session a datagram came from: KFlow's `dvc` plus the source port.
/// Templates are scoped to it (RFC 7011 §10.3.1: a UDP session is the exporter's address and port).
public struct ExporterAddress: Hashable, Sendable {
    public var address: IPAddress
    public var port: UInt16

    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }
}
