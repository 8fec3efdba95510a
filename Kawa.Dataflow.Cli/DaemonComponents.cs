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
    /// whose errors go to the dead-letter destination when there is one (else they are fatal).
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
    /// <exception cref="NotSupportedException">The destination type needs an adapter this build lacks.</exception>
    public static IDestination<EventRecord> CreateDestination(KawaDestinationOptions options, Stream? stdout = null) => options switch
    {
        StdoutDestinationOptions s => new StdoutDestination(stdout ?? Console.OpenStandardOutput(), s.Format),
        _ => throw new NotSupportedException($"destination type '{options.Type}' is not available in this build"),
    };
}
