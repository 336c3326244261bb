/// kflow's version, reported by `--version` and the `kflow_build_info` metric.
public enum KflowVersion {
    public static let string = "0.1.0"
}
