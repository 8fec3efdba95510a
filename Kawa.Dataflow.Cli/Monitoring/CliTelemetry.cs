using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Kawa.Dataflow.Cli.Mapping;

namespace Kawa.Dataflow.Cli.Monitoring;

/// <summary>The daemon's own instruments, beside the library's: served on <c>/metrics</c> and read for the final summary.</summary>
internal static class CliTelemetry
{
    /// <summary>The meter name.</summary>
    public const string MeterName = "Kawa.Dataflow.Cli";

    /// <summary>The counter of input fields Parquet destinations dropped because no column reads them and no
    /// <c>extraColumn</c> is configured (so they are counted, never silently dropped).</summary>
    public const string UnmappedFieldsName = "kawa.fields.unmapped";

    private static readonly Meter s_meter = new(MeterName);

    // The mappers of this process's Parquet destinations; observed (not updated per event) so the hot path is untouched.
    private static readonly ConcurrentBag<ColumnMapper> s_mappers = [];

    private static readonly ObservableCounter<long> s_unmapped = s_meter.CreateObservableCounter(
        UnmappedFieldsName, static () => s_mappers.Sum(m => m.UnmappedFields), unit: "{field}",
        description: "Input fields dropped by a Parquet destination because no column maps them and no extraColumn is set.");

    /// <summary>Counts <paramref name="mapper"/>'s unmapped fields in <see cref="UnmappedFieldsName"/> from now on.</summary>
    public static void Track(ColumnMapper mapper)
    {
        _ = s_unmapped;
        s_mappers.Add(mapper);
    }
}
