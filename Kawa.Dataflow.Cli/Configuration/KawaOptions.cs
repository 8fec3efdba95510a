namespace Kawa.Dataflow.Cli.Configuration;

// The daemon's configuration, bound from JSON + KAWA_ environment variables + command-line overrides by
// ConfigReader. Property names are the JSON keys in camelCase (matching is case-insensitive); docs/config.md is
// the user-facing description. Defaults are stated on each property and set by the initializers.

/// <summary>The whole configuration file.</summary>
internal sealed class KawaOptions
{
    /// <summary>The pipeline to run. Required.</summary>
    public KawaPipelineOptions? Pipeline { get; set; }

    /// <summary>The Prometheus metrics endpoint. Default: port 9464.</summary>
    public MetricsOptions Metrics { get; set; } = new();
}

/// <summary>The metrics endpoint.</summary>
internal sealed class MetricsOptions
{
    /// <summary>TCP port of the <c>/metrics</c> endpoint; 0 disables it. Default 9464.</summary>
    public int Port { get; set; } = 9464;
}

/// <summary>One pipeline: a source, handlers in order, a destination, and an optional dead-letter destination.</summary>
internal sealed class KawaPipelineOptions
{
    /// <summary>The pipeline's name (metrics, logs). Required: letters, digits, <c>.</c>, <c>_</c>, <c>-</c>.</summary>
    public string? Name { get; set; }

    /// <summary>Where messages come from. Required.</summary>
    public SourceOptions? Source { get; set; }

    /// <summary>The handlers, in order. Default: none (messages go to the destination as read).</summary>
    public List<HandlerOptions?> Handlers { get; set; } = [];

    /// <summary>Where messages go. Required.</summary>
    public KawaDestinationOptions? Destination { get; set; }

    /// <summary>Where the <c>deadLetter</c> error policy sends failed messages. Optional; required by that policy.</summary>
    public KawaDestinationOptions? DeadLetter { get; set; }

    /// <summary>In-flight limits and the drain timeout.</summary>
    public LimitsOptions Limits { get; set; } = new();
}

/// <summary>Backpressure limits and shutdown.</summary>
internal sealed class LimitsOptions
{
    /// <summary>
    /// Messages read but not yet settled, at most. Default 50,000: two default Parquet files (<c>rollRows</c> 25,000)
    /// held for their commit, so one commits while the next fills; memory stays bounded by
    /// <see cref="MaxInFlightBytes"/> (the perf e2e ran at this window with a peak RSS of 135 MB).
    /// </summary>
    public int MaxInFlightMessages { get; set; } = 50_000;

    /// <summary>Payload bytes read but not yet settled, at most. Default 64 MiB.</summary>
    public long MaxInFlightBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How long a graceful stop may take to flush and settle before the rest is negatively acked. Default 25 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(25);
}
