using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kawa.Dataflow;

/// <summary>
/// The names under which Kawa.Dataflow reports: one <see cref="Meter"/> and one <see cref="ActivitySource"/> for the core.
/// </summary>
/// <remarks>
/// Subscribe with OpenTelemetry (<c>AddMeter(Telemetry.MeterName)</c>, <c>AddSource(Telemetry.ActivitySourceName)</c>)
/// or a <see cref="MeterListener"/>. Every measurement is tagged <c>kawa.pipeline</c> and, where it belongs to one,
/// <c>kawa.stage</c> (<c>source</c>, <c>handler:&lt;name&gt;</c>, <c>destination</c>).
/// </remarks>
public static class Telemetry
{
    /// <summary>The meter's and activity source's name.</summary>
    public const string MeterName = "Kawa.Dataflow";

    /// <summary>The activity source's name (the same as <see cref="MeterName"/>).</summary>
    public const string ActivitySourceName = MeterName;

    /// <summary>Tag naming the pipeline.</summary>
    public const string PipelineTag = "kawa.pipeline";

    /// <summary>Tag naming the stage.</summary>
    public const string StageTag = "kawa.stage";

    /// <summary>Tag naming an outcome or error policy decision.</summary>
    public const string OutcomeTag = "kawa.outcome";

    internal static readonly ActivitySource ActivitySource = new(ActivitySourceName, ThisAssembly.Version);

    internal static readonly Meter Meter = new(MeterName, ThisAssembly.Version);

    /// <summary>Messages read from the source.</summary>
    internal static readonly Counter<long> Received = Meter.CreateCounter<long>("kawa.messages.received", "{message}", "Messages read from the source.");

    /// <summary>Messages a handler stage finished (whatever it emitted).</summary>
    internal static readonly Counter<long> Handled = Meter.CreateCounter<long>("kawa.messages.handled", "{message}", "Messages a handler stage finished.");

    /// <summary>Messages a handler stage emitted.</summary>
    internal static readonly Counter<long> Emitted = Meter.CreateCounter<long>("kawa.messages.emitted", "{message}", "Messages a handler stage emitted.");

    /// <summary>Source messages acked.</summary>
    internal static readonly Counter<long> Acked = Meter.CreateCounter<long>("kawa.messages.acked", "{message}", "Source messages acked.");

    /// <summary>Source messages negatively acked.</summary>
    internal static readonly Counter<long> NegativeAcked = Meter.CreateCounter<long>("kawa.messages.negative_acked", "{message}", "Source messages negatively acked (to be redelivered).");

    /// <summary>Source messages terminated.</summary>
    internal static readonly Counter<long> Terminated = Meter.CreateCounter<long>("kawa.messages.terminated", "{message}", "Source messages terminated (never redelivered).");

    /// <summary>Messages sent to a dead-letter destination.</summary>
    internal static readonly Counter<long> DeadLettered = Meter.CreateCounter<long>("kawa.messages.dead_lettered", "{message}", "Messages written to a dead-letter destination.");

    /// <summary>Handler or flush failures, whatever the policy then decided.</summary>
    internal static readonly Counter<long> Failed = Meter.CreateCounter<long>("kawa.messages.failed", "{message}", "Handler or flush failures, before the error policy decided.");

    /// <summary>Counts one failure of a stage in <see cref="Failed"/>, unless a batching sink already counted its messages.</summary>
    internal static void CountFailure(Exception exception, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (Failed.Enabled && !CountedBySink(exception))
        {
            Failed.Add(1, tags);
        }
    }

    // A fan-out whose destinations all failed this way throws them together.
    private static bool CountedBySink(Exception exception) => exception switch
    {
        BatchFlushException { CountedAsFailed: true } => true,
        AggregateException { InnerExceptions.Count: > 0 } all => all.InnerExceptions.All(CountedBySink),
        _ => false,
    };

    /// <summary>Messages skipped by a Skip policy.</summary>
    internal static readonly Counter<long> Skipped = Meter.CreateCounter<long>("kawa.messages.skipped", "{message}", "Messages acked without output by a Skip policy.");

    /// <summary>Messages read but not yet finally settled.</summary>
    internal static readonly UpDownCounter<long> InFlight = Meter.CreateUpDownCounter<long>("kawa.messages.in_flight", "{message}", "Messages read from the source and not yet finally settled.");

    /// <summary>Payload bytes read but not yet finally settled.</summary>
    internal static readonly UpDownCounter<long> InFlightBytes = Meter.CreateUpDownCounter<long>("kawa.bytes.in_flight", "By", "Payload bytes read from the source and not yet finally settled.");

    /// <summary>Messages per flushed batch.</summary>
    internal static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("kawa.batch.size", "{message}", "Messages per flushed batch.");

    /// <summary>Flush duration.</summary>
    internal static readonly Histogram<double> FlushDuration = Meter.CreateHistogram<double>("kawa.batch.flush.duration", "s", "Time one batch flush took, retries included.");

    private static class ThisAssembly
    {
        public static readonly string? Version = typeof(Telemetry).Assembly.GetName().Version?.ToString();
    }
}
