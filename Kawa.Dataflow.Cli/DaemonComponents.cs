using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Destinations;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Handlers;
using Kawa.Dataflow.Cli.Sources;

namespace Kawa.Dataflow.Cli;

/// <summary>A handler stage ready to wire: its options (parallelism, capacity, error policy), name and handler.</summary>
/// <param name="Name">The stage name (<c>handler:&lt;name&gt;</c> in dead letters and metrics).</param>
/// <param name="Options">The stage's options.</param>
/// <param name="Handler">The handler.</param>
internal sealed record HandlerStage(string Name, HandlerOptions Options, IHandler<EventRecord, EventRecord> Handler);

/// <summary>
/// Builds the daemon's sources, handlers and destinations from validated options: the parts that need no other
/// package. NATS and Parquet components come from their adapters; asking for them here says so.
/// </summary>
internal static class DaemonComponents
{
    /// <summary>The source the options describe.</summary>
    /// <param name="options">Validated source options.</param>
    /// <param name="stdin">Standard input (for tests); default the process's.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <exception cref="NotSupportedException">The source type needs an adapter this build lacks.</exception>
    public static ISource<EventRecord> CreateSource(SourceOptions options, Stream? stdin = null, TimeProvider? timeProvider = null) => options switch
    {
        FileSourceOptions { Mode: "read" } file => LineSource.OpenFile(file.Path!, timeProvider),
        FileSourceOptions { Mode: "follow" } file => new FollowFileSource(file.Path!, file.OffsetFile!, timeProvider),
        StdinSourceOptions => new LineSource(stdin ?? Console.OpenStandardInput(), "stdin", timeProvider),
        _ => throw new NotSupportedException($"source type '{options.Type}' is not available in this build"),
    };

    /// <summary>
    /// The handler stages in order. An <c>ndjson</c> source gets a leading <c>parse json</c> stage named <c>ndjson</c>,
    /// whose errors go to the dead-letter destination when there is one (else they are fatal). It runs like the first
    /// configured handler (its parallelism, capacity and <c>ordered</c>), so it is no serial bottleneck in front of it and
    /// lets an all-unordered pipeline run to completion; never key-ordered (a message has no key before it is parsed):
    /// after a <c>keyOrdered</c> first handler it keeps arrival order at that parallelism. With no handlers it runs at
    /// parallelism 1, ordered.
    /// </summary>
    public static IReadOnlyList<HandlerStage> CreateHandlers(KawaPipelineOptions pipeline, TimeProvider? timeProvider = null)
    {
        var stages = new List<HandlerStage>();
        var format = pipeline.Source switch
        {
            FileSourceOptions file => file.Format,
            StdinSourceOptions stdin => stdin.Format,
            _ => null,
        };
        if (format == "ndjson")
        {
            var ndjson = new ParseHandlerOptions
            {
                Type = "parse",
                Name = "ndjson",
                Format = "json",
                ErrorPolicy = new ErrorPolicyOptions { Type = pipeline.DeadLetter is null ? "fatal" : "deadLetter" },
            };
            if (pipeline.Handlers.Count > 0 && pipeline.Handlers[0] is { } first)
            {
                ndjson.Parallelism = first.Parallelism;
                ndjson.Capacity = first.Capacity;
                // 'ordered' is ignored beside keyOrdered, and keys do not exist before parsing: keep arrival order.
                ndjson.Ordered = first.Ordered || first.KeyOrdered;
            }

            stages.Add(new HandlerStage("ndjson", ndjson, ParseHandler.Json()));
        }

        for (var i = 0; i < pipeline.Handlers.Count; i++)
        {
            var options = pipeline.Handlers[i]!;
            stages.Add(new HandlerStage(options.Name ?? $"{options.Type}-{i}", options, HandlerFactory.Create(options, timeProvider)));
        }

        return stages;
    }

    /// <summary>The destination the options describe.</summary>
    /// <param name="options">Validated destination options.</param>
    /// <param name="stdout">Standard output (for tests); default the process's.</param>
    /// <param name="stdoutLock">Shared by every stdout destination of one pipeline, so a destination's and a dead-letter destination's lines never interleave.</param>
    /// <exception cref="NotSupportedException">The destination type needs an adapter this build lacks.</exception>
    public static IDestination<EventRecord> CreateDestination(KawaDestinationOptions options, Stream? stdout = null, SemaphoreSlim? stdoutLock = null) => options switch
    {
        StdoutDestinationOptions s => new StdoutDestination(stdout ?? Console.OpenStandardOutput(), s.Format, stdoutLock),
        _ => throw new NotSupportedException($"destination type '{options.Type}' is not available in this build"),
    };

    /// <summary>
    /// The source for <c>kawa run</c>: the built-in ones (file, stdin) or an adapter's through <see cref="AdapterComponents"/>.
    /// </summary>
    /// <param name="options">Validated source options.</param>
    /// <param name="drain">Whether the run should end once the source is caught up (<c>--drain</c>).</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <exception cref="NotSupportedException">The source type needs an adapter this build lacks, or cannot drain.</exception>
    public static Task<ISource<EventRecord>> CreateSourceAsync(SourceOptions options, bool drain, TimeProvider timeProvider, CancellationToken cancellationToken) => options switch
    {
        NatsJetStreamSourceOptions js => AdapterComponents.CreateJetStreamSourceAsync(js, drain, timeProvider, cancellationToken),
        FileSourceOptions { Mode: "follow" } when drain => throw new NotSupportedException(
            "--drain cannot be used with a file source in follow mode (it never catches up for good); use mode 'read' for a one-off run"),
        NatsSourceOptions when drain => throw new NotSupportedException(
            "--drain cannot be used with a core 'nats' source (a subscription has no end to catch up to); use 'nats-jetstream' for a batch run"),
        NatsSourceOptions nats => AdapterComponents.CreateNatsSourceAsync(nats, timeProvider, cancellationToken),
        _ => Task.FromResult(CreateSource(options, timeProvider: timeProvider)),
    };

    /// <summary>The destination for <c>kawa run</c>: stdout, or an adapter's through <see cref="AdapterComponents"/>.</summary>
    /// <param name="options">Validated destination options.</param>
    /// <param name="deadLetter">Whether this is the dead-letter destination (a Parquet one then defaults to the dead-letter columns).</param>
    /// <param name="stdoutLock">Shared lock for stdout destinations.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="loggerFactory">Where the destination logs (file commits and failures).</param>
    /// <param name="sourceIsJetStream">Whether the pipeline reads JetStream (a JetStream destination then de-duplicates by source sequence).</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <exception cref="NotSupportedException">The destination type needs an adapter this build lacks.</exception>
    public static Task<IDestination<EventRecord>> CreateDestinationAsync(KawaDestinationOptions options, bool deadLetter, SemaphoreSlim stdoutLock, TimeProvider timeProvider, Microsoft.Extensions.Logging.ILoggerFactory loggerFactory, bool sourceIsJetStream, CancellationToken cancellationToken) => options switch
    {
        ParquetDestinationOptions parquet => AdapterComponents.CreateParquetDestinationAsync(parquet, deadLetter, timeProvider, loggerFactory, cancellationToken),
        NatsJetStreamDestinationOptions js => AdapterComponents.CreateJetStreamDestinationAsync(js, sourceIsJetStream, cancellationToken),
        _ => Task.FromResult(CreateDestination(options, stdoutLock: stdoutLock)),
    };
}
