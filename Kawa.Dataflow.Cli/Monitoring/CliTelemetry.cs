using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Cli.Monitoring;

/// <summary>The daemon's own instruments, beside the library's: served on <c>/metrics</c> and read for the final summary.</summary>
internal static class CliTelemetry
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Kawa.Dataflow.Cli";

    /// <summary>The counter of input fields a Parquet destination dropped because no column reads them and no
    /// <c>extraColumn</c> is configured (so they are counted, never silently dropped).</summary>
    public const string UnmappedFieldsName = "kawa.fields.unmapped";

    private static readonly Meter s_meter = new(MeterName);

    /// <summary>See <see cref="UnmappedFieldsName"/>.</summary>
    public static readonly Counter<long> UnmappedFields = s_meter.CreateCounter<long>(
        UnmappedFieldsName, unit: "{field}", description: "Input fields dropped by a Parquet destination because no column maps them and no extraColumn is set.");
}
