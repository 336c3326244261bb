/// Expected against received export sequence numbers of one stream (an exporter's address, port and
/// observation domain): tells loss before the collector from reordering and exporter restarts. A small
/// value type any protocol feeds: `observe(_:count:uptimeMs:)` once per message with the message's
/// sequence number and how many units it accounts for (IPFIX: its data records; NetFlow v9: 1, the
/// packet; v5: its flows; sFlow: 1, the datagram).
///
/// - A message beyond the expected number leaves a hole. A hole is counted as lost only when no message
///   filled it within the `reorderWindow` messages after it (or more than `maxHoles` holes are open), so a message that
///   arrives late within the window fills its hole and counts as reordered instead.
/// - A message behind the expected number that fills no hole is a restart only if the next message
///   follows on from it (or at once, when the header's uptime fell); otherwise it was a stray late or
///   duplicated message (counted as reordered). A restart (or a forward jump beyond `maxJump`: an
///   exporter that starts from a random number) is counted as a reset, never as loss; holes open at a
///   reset are counted as lost, as they were sent and never arrived.
/// - A message whose count is unknown (an IPFIX set whose template is unknown) only resynchronises:
///   the next message's number is taken as expected.
package struct SequenceTracker: Sendable, Equatable {
    /// What one message changed, in the protocol's units (`lost`) and in messages (the others).
    package struct Counts: Sendable, Equatable {
        package var lost: UInt64 = 0
        package var reordered: UInt64 = 0
        package var resets: UInt64 = 0

        package init(lost: UInt64 = 0, reordered: UInt64 = 0, resets: UInt64 = 0) {
            self.lost = lost
            self.reordered = reordered
            self.resets = resets
        }

        package static func += (lhs: inout Counts, rhs: Counts) {
            lhs.lost &+= rhs.lost
            lhs.reordered &+= rhs.reordered
            lhs.resets &+= rhs.resets
        }
    }

    /// Numbers not yet received between the expected one and a later message: [start, end), modulo 2³².
    struct Hole: Sendable, Equatable {
        var start: UInt32
        var end: UInt32
        /// Messages observed since the hole opened.
        var age: UInt8
    }

    /// Messages a hole stays open for a late message before it is counted as lost.
    package static let reorderWindow: UInt8 = 16
    /// Holes kept open at once; one more settles the oldest.
    package static let maxHoles = 8
    /// A forward jump larger than this (units) is a restart, not loss: 2²⁴ records is hours of a busy
    /// exporter's output, where a restart from a random initial number lands anywhere in 2³².
    package static let maxJump: UInt32 = 1 << 24
    /// The header's uptime falling by more than this (ms) is a restart; less is a late message's jitter.
    package static let uptimeDropMs: UInt32 = 10_000

    /// The number the next message should carry.
    private(set) var expected: UInt32 = 0
    private(set) var holes: [Hole] = []
    /// The uptime of the latest message that carried one (NetFlow v9, v5); 0 = none seen.
    private(set) var lastUptimeMs: UInt32 = 0
    /// After a backwards message that filled no hole: where its stream would continue (a restart if the
    /// next message starts there).
    private(set) var suspectedRestartNext: UInt32?
    package private(set) var isStarted = false
    /// The next message only resynchronises (the previous one's count was unknown).
    private(set) var resynchronize = false
    /// Set when taken from a snapshot and cleared by the first message observed live: a later snapshot of
    /// the same stream (the predecessor's final one) may still replace it.
    package private(set) var isFromSnapshot = false
    /// Taken from a snapshot whose writer had not heard the stream live either (it had imported it): a
    /// sibling's copy, older than the state of the worker that heard the stream.
    package private(set) var isSecondhand = false

    package init() {}

    /// Accounts for one message numbered `sequence` that covers `count` units (nil: unknown). `uptimeMs`
    /// is the header's uptime where the protocol has one. Returns what this message changed.
    package mutating func observe(_ sequence: UInt32, count: UInt32?, uptimeMs: UInt32? = nil) -> Counts {
        // Nearly every message is the next one of a stream with nothing pending: a compare and an add.
        if sequence == expected, isStarted, holes.isEmpty, suspectedRestartNext == nil, !resynchronize, !isFromSnapshot,
            let count, uptimeMs.map({ !uptimeFell(from: lastUptimeMs, to: $0) }) ?? true
        {
            expected = sequence &+ count
            if let uptimeMs { lastUptimeMs = uptimeMs }
            return Counts()
        }
        return observeOutOfLine(sequence, count: count, uptimeMs: uptimeMs)
    }

    @inline(never)
    private mutating func observeOutOfLine(_ sequence: UInt32, count: UInt32?, uptimeMs: UInt32?) -> Counts {
        var counts = Counts()
        isFromSnapshot = false
        isSecondhand = false
        defer {
            if let uptimeMs { lastUptimeMs = uptimeMs }
        }
        guard isStarted else {
            restart(at: sequence, count: count)
            return counts
        }
        if let uptimeMs, lastUptimeMs != 0, uptimeFell(from: lastUptimeMs, to: uptimeMs) {
            counts.lost &+= settleAll()
            counts.resets &+= 1
            restart(at: sequence, count: count)
            return counts
        }
        if let candidate = suspectedRestartNext {
            suspectedRestartNext = nil
            if sequence == candidate {
                counts.lost &+= settleAll()
                counts.resets &+= 1
                restart(at: sequence, count: count)
                return counts
            }
            counts.reordered &+= 1  // the suspect was a stray late (or duplicated) message
        }
        if resynchronize {
            resynchronize = false
            expected = sequence
        }
        for index in holes.indices { holes[index].age &+= 1 }
        place(sequence, count: count, &counts)
        counts.lost &+= settleExpiredHoles()
        return counts
    }

    /// Where a message of a running stream falls: on the expected number, ahead of it (a hole), or
    /// behind it (a late message filling a hole, or a suspected restart).
    private mutating func place(_ sequence: UInt32, count: UInt32?, _ counts: inout Counts) {
        let distance = Int32(bitPattern: sequence &- expected)
        if distance == 0 {
            advance(past: sequence, count: count)
        } else if distance > 0 {
            if UInt32(distance) > Self.maxJump {
                counts.lost &+= settleAll()
                counts.resets &+= 1
                restart(at: sequence, count: count)
                return
            }
            while holes.count >= Self.maxHoles { counts.lost &+= settleOldest() }
            holes.append(Hole(start: expected, end: sequence, age: 0))
            advance(past: sequence, count: count)
        } else if fillHole(sequence, count: count ?? 0) {
            counts.reordered &+= 1
        } else if let count {
            suspectedRestartNext = sequence &+ count
        } else {
            counts.reordered &+= 1
        }
    }

    private func uptimeFell(from last: UInt32, to now: UInt32) -> Bool {
        // A wrap of the 32-bit uptime (49.7 days) is no restart.
        let wrapped = last > UInt32.max - 86_400_000 && now < 86_400_000
        return now < last && last - now > Self.uptimeDropMs && !wrapped
    }

    private mutating func restart(at sequence: UInt32, count: UInt32?) {
        isStarted = true
        holes = []
        suspectedRestartNext = nil
        resynchronize = false
        expected = sequence
        advance(past: sequence, count: count)
    }

    private mutating func advance(past sequence: UInt32, count: UInt32?) {
        if let count {
            expected = sequence &+ count
        } else {
            resynchronize = true
        }
    }

    /// Settles the holes the window's last message has passed without filling; returns the units lost.
    private mutating func settleExpiredHoles() -> UInt64 {
        guard !holes.isEmpty else { return 0 }
        var lost: UInt64 = 0
        holes.removeAll { hole in
            guard hole.age >= Self.reorderWindow else { return false }
            lost &+= UInt64(hole.end &- hole.start)
            return true
        }
        return lost
    }

    private mutating func settleOldest() -> UInt64 {
        let hole = holes.removeFirst()
        return UInt64(hole.end &- hole.start)
    }

    private mutating func settleAll() -> UInt64 {
        let lost = holes.reduce(UInt64(0)) { $0 &+ UInt64($1.end &- $1.start) }
        holes = []
        return lost
    }

    /// Removes [sequence, sequence + count) from the hole it falls in; false when it falls in none. A
    /// split may leave `maxHoles + 1` holes until the next message settles the oldest.
    private mutating func fillHole(_ sequence: UInt32, count: UInt32) -> Bool {
        for index in holes.indices {
            let hole = holes[index]
            let offset = sequence &- hole.start
            let size = hole.end &- hole.start
            guard offset < size else { continue }
            guard count > 0 else { return true }  // late, but it covers no numbers (templates only)
            let filledEnd = size - offset > count ? offset + count : size  // relative to hole.start
            var replacement: [Hole] = []
            if offset > 0 { replacement.append(Hole(start: hole.start, end: sequence, age: hole.age)) }
            if filledEnd < size { replacement.append(Hole(start: hole.start &+ filledEnd, end: hole.end, age: hole.age)) }
            holes.replaceSubrange(index...index, with: replacement)
            return true
        }
        return false
    }

    // MARK: - Snapshot form

    /// Octets of the serialized state: expected u32 | last uptime u32 | suspected next u32 | flags u8
    /// (bit 0 started, 1 resynchronize, 2 suspected, 3 not heard live by the writer) | hole count u8 |
    /// per hole start u32, end u32, age u8.
    package var encodedLength: Int { 4 + 4 + 4 + 1 + 1 + holes.count * 9 }

    package func write(into buffer: inout [UInt8]) {
        func append32(_ value: UInt32) {
            for shift in stride(from: 24, through: 0, by: -8) { buffer.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        append32(expected)
        append32(lastUptimeMs)
        append32(suspectedRestartNext ?? 0)
        var flags: UInt8 = 0
        if isStarted { flags |= 1 }
        if resynchronize { flags |= 2 }
        if suspectedRestartNext != nil { flags |= 4 }
        if isFromSnapshot { flags |= 8 }
        buffer.append(flags)
        buffer.append(UInt8(holes.count))
        for hole in holes {
            append32(hole.start)
            append32(hole.end)
            buffer.append(hole.age)
        }
    }

    /// The state `write` serialized, or nil when the octets cannot be one (length, flags, hole count).
    package init?(serialized bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= 14 else { return nil }
        let flags = bytes[12]
        let holeCount = Int(bytes[13])
        guard flags & ~15 == 0, holeCount <= Self.maxHoles + 1, bytes.count == 14 + holeCount * 9 else { return nil }
        expected = bytes.readBE32(at: 0)
        lastUptimeMs = bytes.readBE32(at: 4)
        suspectedRestartNext = flags & 4 != 0 ? bytes.readBE32(at: 8) : nil
        isStarted = flags & 1 != 0
        resynchronize = flags & 2 != 0
        for index in 0..<holeCount {
            let base = 14 + index * 9
            let hole = Hole(start: bytes.readBE32(at: base), end: bytes.readBE32(at: base + 4), age: bytes[base + 8])
            guard hole.end &- hole.start != 0, hole.end &- hole.start <= Self.maxJump else { return nil }
            holes.append(hole)
        }
        isFromSnapshot = true
        isSecondhand = flags & 8 != 0
    }

    /// Whether `incoming`, read from a snapshot, should replace this state: never one heard live here; a
    /// state not yet heard live gives way to any firsthand copy (the writer heard the stream), and to a
    /// secondhand one only if it is secondhand itself.
    package func yields(to incoming: SequenceTracker) -> Bool {
        guard isStarted else { return true }
        return isFromSnapshot && (isSecondhand || !incoming.isSecondhand)
    }
}
