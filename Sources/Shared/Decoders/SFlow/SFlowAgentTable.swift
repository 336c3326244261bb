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
/// `maxSessions`, exporters.max); samples of further sources are decoded but not added here.
final class SFlowAgentTable {
    struct SourceKey: Hashable {
        let agent: IPAddress
        let subAgent: UInt32
        let source: UInt64
    }
    struct Last {
        var pool: UInt32
        var drops: UInt32
    }

    private(set) var agents: [IPAddress: SFlowAgentStatistics] = [:]
    private var sources: [SourceKey: Last] = [:]
    let maxSources: Int

    init(maxSources: Int) { self.maxSources = maxSources }

    func observe(agent: IPAddress, subAgent: UInt32, source: UInt64, pool: UInt32, drops: UInt32) {
        let key = SourceKey(agent: agent, subAgent: subAgent, source: source)
        guard let last = sources[key] else {
            guard sources.count < maxSources else { return }
            sources[key] = Last(pool: pool, drops: drops)
            if agents[agent] == nil { agents[agent] = SFlowAgentStatistics() }
            return
        }
        sources[key] = Last(pool: pool, drops: drops)
        agents[agent, default: SFlowAgentStatistics()].samplePool &+= Self.growth(from: last.pool, to: pool)
        agents[agent, default: SFlowAgentStatistics()].samplesDropped &+= Self.growth(from: last.drops, to: drops)
    }

    /// How much a 32-bit counter grew: across a wrap when that is the shorter way forward, else (the agent
    /// restarted and counts from 0 again) the new value.
    static func growth(from old: UInt32, to new: UInt32) -> UInt64 {
        let forward = new &- old
        return forward < 1 << 31 ? UInt64(forward) : UInt64(new)
    }
}
