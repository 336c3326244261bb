import FlowModel

/// Limits and lifetimes of the template cache. Every limit exists so that a hostile or broken
/// exporter cannot make the collector grow without bound; the defaults are far above what real
/// exporters use (a busy IOS-XR router defines a few dozen templates per observation domain).
public struct DecoderConfiguration: Sendable {
    /// A template (and the options-derived sampling state) is forgotten when not refreshed for this long.
    /// RFC 7011 §8.4 leaves the value to the collector; 1800 s is 3× a typical 600 s refresh interval.
    public var templateLifetimeSeconds: UInt32 = 1800
    /// Templates kept per transport session (all observation domains of one exporter address+port).
    public var maxTemplatesPerSession: Int = 4096
    /// Templates kept in total, across every session.
    public var maxTemplatesTotal: Int = 65536
    /// Transport sessions (exporter address+port) kept; beyond it the least recently used session
    /// without templates is evicted (one holding templates never is, to make room for a new session).
    public var maxSessions: Int = 10_000
    /// Fields in one template; a template with more is refused (`.tooManyTemplateFields`). Real
    /// templates have tens of fields; the cap bounds what one template costs to compile and keep.
    public var maxFieldsPerTemplate: Int = 1024
    /// Bytes all cached templates may cost (`DecodePlan.memoryCost`), per decoder (worker).
    public var maxTemplateBytesTotal: Int = 64 << 20
    /// Bytes the templates of one transport session may cost.
    public var maxTemplateBytesPerSession: Int = 4 << 20
    /// Transport sessions of one exporter address (source ports): a host cycling source ports evicts
    /// its own least recently used session at this quota, never another host's.
    public var maxSessionsPerAddress: Int = 64
    /// A biflow record (RFC 5103 reverse IEs, NSEL initiator/responder counters) gives two flows, the
    /// reverse one with addresses, ports and interfaces swapped (`output.biflow = split`); false keeps
    /// only the forward direction (`forward`).
    public var splitsBiflows: Bool = true
    /// Default rate, per-exporter overrides and renormalisation of sampled flows.
    public var sampling = SamplingConfiguration()
    /// Fields chosen by configuration (`output.field.*`), compiled into every template that has them.
    public var customFields: [CustomField] = []
    /// Where the decoder puts the records' custom values and the encoder reads them (share it with
    /// the encoder: `KFlowJSONEncoder(custom:values:)`).
    public let customValues = CustomValueStore()

    public init(
        templateLifetimeSeconds: UInt32 = 1800,
        maxTemplatesPerSession: Int = 4096,
        maxTemplatesTotal: Int = 65536,
        maxSessions: Int = 10_000,
        maxFieldsPerTemplate: Int = 1024,
        maxTemplateBytesTotal: Int = 64 << 20,
        maxTemplateBytesPerSession: Int = 4 << 20,
        maxSessionsPerAddress: Int = 64,
        splitsBiflows: Bool = true,
        sampling: SamplingConfiguration = SamplingConfiguration(),
        customFields: [CustomField] = []
    ) {
        self.templateLifetimeSeconds = templateLifetimeSeconds
        self.maxTemplatesPerSession = max(1, maxTemplatesPerSession)
        self.maxTemplatesTotal = max(1, maxTemplatesTotal)
        self.maxSessions = max(1, maxSessions)
        self.maxFieldsPerTemplate = max(1, maxFieldsPerTemplate)
        self.maxTemplateBytesTotal = max(1, maxTemplateBytesTotal)
        self.maxTemplateBytesPerSession = max(1, maxTemplateBytesPerSession)
        self.maxSessionsPerAddress = max(1, maxSessionsPerAddress)
        self.splitsBiflows = splitsBiflows
        self.sampling = sampling
        self.customFields = Array(customFields.prefix(CustomField.maxCount))
    }
}
