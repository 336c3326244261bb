import FlowModel

/// What the flow samples of one sFlow agent said about its sampling, since this worker first heard each
/// of its data sources: packets the sampler saw (the growth of `sample_pool`) and samples it dropped for
/// lack of resources (the growth of `drops`). The agent's counters are cumulative per data source, so
/// each source's last values are kept and only their growth is added (the first value is the baseline:
/// what happened before this worker listened is not counted, so a replaced worker does not count it twice).
public struct SFlowAgentStatistics: Equatable, Sendable {
    public var samplePool: UInt64 = 0
    public var samplesDropped: UInt64 = 0
    public init(samplePool: UInt64 = 0, samplesDropped: UInt64 = 0) {
        self.samplePool = samplePool
        self.samplesDropped = samplesDropped
    }
}

/// Per-agent sampling figures, bounded: at most `maxSources` data sources are followed (the decoder's
/// `maxSessions`, exporters.max); samples of further sources are decoded but not added here. A known source
/// costs one hash lookup per sample: it holds its agent's slot.
final class SFlowAgentTable {
    struct SourceKey: Hashable {
        let agent: IPAddress
        let subAgent: UInt32
        let source: UInt64
    }
    struct Source {
        var pool: UInt32
        var drops: UInt32
        let agentSlot: Int
    }

    private var agentAddresses: [IPAddress] = []
    private var agentTotals: [SFlowAgentStatistics] = []
    private var agentSlots: [IPAddress: Int] = [:]
    private var sources: [SourceKey: Source] = [:]
    let maxSources: Int

    init(maxSources: Int) { self.maxSources = maxSources }

    /// Every agent heard, with its totals.
    var agents: [IPAddress: SFlowAgentStatistics] {
        Dictionary(uniqueKeysWithValues: zip(agentAddresses, agentTotals))
    }

    func forEach(_ body: (IPAddress, SFlowAgentStatistics) -> Void) {
        for (address, totals) in zip(agentAddresses, agentTotals) { body(address, totals) }
    }

    func observe(agent: IPAddress, subAgent: UInt32, source: UInt64, pool: UInt32, drops: UInt32) {
        let key = SourceKey(agent: agent, subAgent: subAgent, source: source)
        if let index = sources.index(forKey: key) {
            let last = sources.values[index]
            agentTotals[last.agentSlot].samplePool &+= Self.growth(from: last.pool, to: pool)
            agentTotals[last.agentSlot].samplesDropped &+= Self.growth(from: last.drops, to: drops)
            sources.values[index].pool = pool
            sources.values[index].drops = drops
            return
        }
        guard sources.count < maxSources else { return }
        let slot: Int
        if let known = agentSlots[agent] {
            slot = known
        } else {
            slot = agentAddresses.count
            agentSlots[agent] = slot
            agentAddresses.append(agent)
            agentTotals.append(SFlowAgentStatistics())
        }
        // The first value is the baseline.
        sources[key] = Source(pool: pool, drops: drops, agentSlot: slot)
    }

    /// How much a 32-bit counter grew: across a wrap when that is the shorter way forward, else (the agent
    /// restarted and counts from 0 again) the new value.
    static func growth(from old: UInt32, to new: UInt32) -> UInt64 {
        let forward = new &- old
        return forward < 1 << 31 ? UInt64(forward) : UInt64(new)
    }
}
