/// What an options data set told about its observation domain.
package struct OptionsValues {
    package var samplingInterval: UInt32 = 0
    package var systemInitTimeMs: UInt64 = 0

    package init(samplingInterval: UInt32 = 0, systemInitTimeMs: UInt64 = 0) {
        self.samplingInterval = samplingInterval
        self.systemInitTimeMs = systemInitTimeMs
    }
}
