/// What an options data set told about its observation domain.
package struct OptionsValues {
    /// From options records that name no sampler (the domain's rate); 0 when none.
    package var samplingInterval: UInt32 = 0
    package var systemInitTimeMs: UInt64 = 0
    /// From options records that name a sampler (selector), in the order of the records.
    package var samplers: [SamplerRate] = []

    package init(samplingInterval: UInt32 = 0, systemInitTimeMs: UInt64 = 0, samplers: [SamplerRate] = []) {
        self.samplingInterval = samplingInterval
        self.systemInitTimeMs = systemInitTimeMs
        self.samplers = samplers
    }
}
