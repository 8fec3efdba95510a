using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow;

/// <summary>Pipeline-wide settings: in-flight limits, drain timeout, time and logging.</summary>
/// <remarks>
/// <para>Validated once, by <see cref="PipelineDefinition.Build(PipelineOptions?)"/> (or at host start-up when bound
/// from configuration); every problem is reported at once with the property's name. The pipeline takes a copy:
/// changing the instance afterwards has no effect.</para>
/// <para>The most source messages that can be read but not yet finally settled is exactly
/// <see cref="MaxInFlightMessages"/> (see <see cref="Pipeline.MaxUnsettledMessages"/>); size a JetStream consumer's
/// <c>max_ack_pending</c> at least that large.</para>
/// </remarks>
public sealed class PipelineOptions
{
    /// <summary>The default of <see cref="MaxInFlightMessages"/>: 4096.</summary>
    public const int DefaultMaxInFlightMessages = 4096;

    /// <summary>The default of <see cref="MaxInFlightBytes"/>: 256 MiB.</summary>
    public const long DefaultMaxInFlightBytes = 256L * 1024 * 1024;

    /// <summary>The default of <see cref="SegmentSize"/>: 64.</summary>
    public const int DefaultSegmentSize = 64;

    /// <summary>The default of <see cref="DrainTimeout"/>: 25 seconds, below the generic host's 30 second shutdown timeout.</summary>
    public static readonly TimeSpan DefaultDrainTimeout = TimeSpan.FromSeconds(25);

    /// <summary>
    /// The most source messages read but not yet finally settled (acked, negatively acked or terminated), counting
    /// tokens a destination holds for a deferred ack. The source is not read while the pipeline is at this limit.
    /// Default <see cref="DefaultMaxInFlightMessages"/> (4096); at least 1.
    /// </summary>
    /// <remarks>A batching destination that waits for more messages than this before it flushes must also flush on a timer, or it waits forever.</remarks>
    public int MaxInFlightMessages { get; set; } = DefaultMaxInFlightMessages;

    /// <summary>
    /// The payload bytes (as measured by the source's payload-size function) read but not yet finally settled.
    /// The source is read only while fewer bytes than this are in flight, so the total may exceed it by at most one
    /// message's size less one byte. Default <see cref="DefaultMaxInFlightBytes"/> (256 MiB); at least 1.
    /// </summary>
    public long MaxInFlightBytes { get; set; } = DefaultMaxInFlightBytes;

    /// <summary>
    /// How many messages the pipeline moves between stages at once (handlers still see one message at a time).
    /// Larger segments cost less per message; the source-side segment is handed on early whenever the source has
    /// nothing ready, so a quiet source never waits for a segment to fill. Default <see cref="DefaultSegmentSize"/> (64); 1 to 4096.
    /// </summary>
    public int SegmentSize { get; set; } = DefaultSegmentSize;

    /// <summary>
    /// How long a graceful stop (the run's cancellation token fired) may take: receiving stops at once, work in flight
    /// finishes and the destination is flushed. When it expires, whatever is unfinished is negatively acked (no
    /// delay) so the source redelivers it promptly. Default <see cref="DefaultDrainTimeout"/> (25 s); positive and at most
    /// about 49.7 days (the longest a timer takes), or <see cref="Timeout.InfiniteTimeSpan"/> to wait as long as it takes.
    /// </summary>
    public TimeSpan DrainTimeout { get; set; } = DefaultDrainTimeout;

    /// <summary>
    /// Whether unordered parallel stages run to completion. When every handler stage has
    /// <see cref="StageOptions.EnsureOrdered"/> and <see cref="StageOptions.KeyOrdered"/> off and the same
    /// <see cref="StageOptions.MaxDegreeOfParallelism"/> P of at least 2, and the destination takes P sends at once
    /// (<see cref="DestinationOptions.MaxDegreeOfParallelism"/> = P) or is a <see cref="BatchingDestination{T}"/>, P workers
    /// take turns reading the source, and each carries the segment it read through every stage to the destination on
    /// its own thread, instead of passing it between blocks on different threads. A message whose handler and send
    /// finish synchronously then stays on one core from receive to send (see docs/pipeline.md for what that is worth
    /// on few cores). A worker keeps a full segment whole when the next message is already waiting (the next worker reads
    /// its own); any other segment it shares out to the others first, so a few messages ready at a time still keep every
    /// worker busy. Every other rule holds:
    /// the source is read by one caller at a time and only within the in-flight limits, no stage runs more often at once
    /// than its parallelism, errors, drain and abort behave the same; stage and destination
    /// <c>BoundedCapacity</c> do not apply (nothing waits between stages). One difference: the source is read only when a
    /// worker is free, so a handler or destination that waits for the source itself to make progress (rather than for
    /// its own I/O) could wait forever with every worker inside it; such a pipeline needs <see langword="false"/>.
    /// Default <see langword="true"/>; <see langword="false"/> always passes segments between blocks.
    /// </summary>
    public bool RunToCompletion { get; set; } = true;

    /// <summary>The clock for retry back-off and the drain timeout. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the pipeline logs. Default <see cref="NullLoggerFactory.Instance"/>.</summary>
    public ILoggerFactory LoggerFactory { get; set; } = NullLoggerFactory.Instance;

    internal PipelineOptions Clone() => (PipelineOptions)MemberwiseClone();

    internal void Validate(List<string> errors)
    {
        if (MaxInFlightMessages < 1)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(MaxInFlightMessages)} must be at least 1 (was {MaxInFlightMessages}).");
        }

        if (MaxInFlightBytes < 1)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(MaxInFlightBytes)} must be at least 1 (was {MaxInFlightBytes}).");
        }

        if (SegmentSize is < 1 or > 4096)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(SegmentSize)} must be between 1 and 4096 (was {SegmentSize}).");
        }

        if ((DrainTimeout <= TimeSpan.Zero || DrainTimeout > TimerLimit.Longest) && DrainTimeout != Timeout.InfiniteTimeSpan)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(DrainTimeout)} must be positive and at most {TimerLimit.Describe}, or Timeout.InfiniteTimeSpan (was {DrainTimeout}).");
        }

        if (TimeProvider is null)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(TimeProvider)} must not be null.");
        }

        if (LoggerFactory is null)
        {
            errors.Add($"{nameof(PipelineOptions)}.{nameof(LoggerFactory)} must not be null.");
        }
    }
}

/// <summary>The longest delay a timer or <see cref="Task.Delay(TimeSpan, TimeProvider, CancellationToken)"/> accepts:
/// <see cref="uint.MaxValue"/> − 1 milliseconds (about 49.7 days); longer ones throw when armed, mid-run.</summary>
internal static class TimerLimit
{
    public static readonly TimeSpan Longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0);

    public const string Describe = "4294967294 ms (about 49.7 days, the longest a timer takes)";
}
