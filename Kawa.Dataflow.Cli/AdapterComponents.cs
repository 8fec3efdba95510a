using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli;

/// <summary>
/// The seam where the NATS and Parquet adapters plug into the daemon: one method per component type that needs an
/// adapter package. <see cref="DaemonComponents"/> calls these; each one that is not wired yet throws
/// <see cref="NotSupportedException"/>, which <c>kawa run</c> reports as "not available in this build" (exit 6).
/// </summary>
/// <remarks>
/// To plug an adapter in: reference its project from Kawa.Dataflow.Cli.csproj and replace the body of the matching
/// method with the adapter's construction from the validated options (connecting here is fine: a connection failure
/// thrown from these methods is reported as exit 4). Components that need disposing should implement
/// <see cref="IAsyncDisposable"/>; the runner disposes them after the run.
/// </remarks>
internal static class AdapterComponents
{
    /// <summary>The <c>nats-jetstream</c> source (a durable pull consumer); <paramref name="drain"/>: end once caught up (<c>kawa run --drain</c>).</summary>
    public static Task<ISource<EventRecord>> CreateJetStreamSourceAsync(NatsJetStreamSourceOptions options, bool drain, TimeProvider timeProvider, CancellationToken cancellationToken)
        => throw NotInThisBuild(options.Type, "the JetStream source adapter (Kawa.Dataflow.Nats/Pipeline)");

    /// <summary>The <c>parquet</c> destination (local directory or S3), acking at each file commit.</summary>
    public static Task<IDestination<EventRecord>> CreateParquetDestinationAsync(ParquetDestinationOptions options, bool deadLetter, TimeProvider timeProvider, CancellationToken cancellationToken)
        => throw NotInThisBuild(options.Type, "the Parquet destination (Kawa.Dataflow.Parquet/Sink)");

    /// <summary>The <c>nats-jetstream</c> destination, acking after the stream's publish ack.</summary>
    public static Task<IDestination<EventRecord>> CreateJetStreamDestinationAsync(NatsJetStreamDestinationOptions options, CancellationToken cancellationToken)
        => throw NotInThisBuild(options.Type, "the JetStream destination adapter (Kawa.Dataflow.Nats/Pipeline)");

    private static NotSupportedException NotInThisBuild(string type, string what)
        => new($"type '{type}' is not available in this build: it needs {what}, which is not wired into kawa yet");
}
