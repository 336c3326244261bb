import WireFormat

/// Per-domain state other than templates that a template snapshot carries across processes (reload,
/// crash, restart): each kind is written after the domain's templates as `kind u8 | length u16 | value`
/// and applied to the importer's domain state. This table is the one list of kinds: adding state to
/// snapshots is a row here (a new kind number, never reused), a value type that encodes itself, and a
/// test that it round-trips.
///
/// A kind the reader does not know is skipped by its length (a snapshot from a newer build keeps its
/// templates); a value its kind refuses rejects the rest of the snapshot like any bad entry.
package struct DomainExtension: Sendable {
    /// The kind's number in the snapshot.
    package let kind: UInt8
    /// The octets `write` appends for `state` (0: nothing to carry, the entry is left out). Called to size
    /// a snapshot before writing it: it must not allocate.
    package let encodedLength: @Sendable (DomainState) -> Int
    /// Appends exactly `encodedLength(state)` octets for `state`.
    package let write: @Sendable (DomainState, inout [UInt8]) -> Void
    /// Applies a value read from a snapshot to the importer's state of the same domain; false when the
    /// value cannot be right (the snapshot is then rejected from this entry on).
    package let apply: @Sendable (UnsafeRawBufferPointer, DomainState) -> Bool

    package init(
        kind: UInt8, encodedLength: @escaping @Sendable (DomainState) -> Int,
        write: @escaping @Sendable (DomainState, inout [UInt8]) -> Void,
        apply: @escaping @Sendable (UnsafeRawBufferPointer, DomainState) -> Bool
    ) {
        self.kind = kind
        self.encodedLength = encodedLength
        self.write = write
        self.apply = apply
    }
}

extension DomainExtension {
    /// Every kind, in the order written. Append rows; never renumber a kind.
    package static let all: [DomainExtension] = [samplers, sequence]

    /// Kind 3: the domain's samplers and their rates (`SamplerTable`).
    package static let samplers = DomainExtension(
        kind: 3, encodedLength: { $0.samplers.encodedLength }, write: { $0.samplers.write(into: &$1) },
        apply: { $1.samplers.merge(encoded: $0) })

    /// Kind 4: the domain's export sequence state (`SequenceTracker`): expected number, open holes. It
    /// replaces the importer's only while that has seen no message of the stream live, and a copy from the
    /// worker that heard the stream beats a sibling's imported copy (`SequenceTracker.yields(to:)`).
    package static let sequence = DomainExtension(
        kind: 4, encodedLength: { $0.sequence.isStarted ? $0.sequence.encodedLength : 0 },
        write: { $0.sequence.write(into: &$1) },
        apply: { bytes, state in
            guard let tracker = SequenceTracker(serialized: bytes) else { return false }
            if state.sequence.yields(to: tracker) { state.sequence = tracker }
            return true
        })

    /// The row of `kind`, nil for a kind this build does not know.
    package static func row(_ kind: UInt8) -> DomainExtension? { all.first { $0.kind == kind } }

    /// Octets of an entry before its value.
    package static let entryHeaderLength = 1 + 2
}
