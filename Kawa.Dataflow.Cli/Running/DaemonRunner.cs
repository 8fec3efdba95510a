using System.Net.Sockets;
using System.Runtime.InteropServices;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Monitoring;
using Kawa.Dataflow.Nats;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Cli.Running;

/// <summary>
/// <c>kawa run</c>: builds the pipeline from validated options with the core builder, runs it until the source ends
/// or a signal asks for a drain, and maps how it ended to an <see cref="ExitCodes"/> value.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>Source ends (file read mode, end of stdin, <c>--drain</c> caught up): drain, flush, ack, exit 0.</item>
/// <item>First SIGINT/SIGTERM: graceful drain within <c>limits.drainTimeout</c>, exit 0; past the timeout what is
/// unfinished is negatively acked and the exit code is 5. A second signal exits 130 at once (unsettled messages are
/// redelivered by the source after its ack timeout).</item>
/// <item>A fatal stage error: exit 1 (or 4 when the cause is a lost connection), naming the stage, the input and what to do.</item>
/// </list>
/// </remarks>
internal static partial class DaemonRunner
{
    /// <summary>Runs the pipeline.</summary>
    /// <param name="options">Validated options.</param>
    /// <param name="drain">End once the source is caught up.</param>
    /// <param name="stderr">Where errors go.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <returns>An <see cref="ExitCodes"/> value.</returns>
    public static async Task<int> RunAsync(KawaOptions options, bool drain, TextWriter stderr, ILoggerFactory loggerFactory)
    {
        var pipelineOptions = options.Pipeline!;
        var logger = loggerFactory.CreateLogger("kawa.run");
        var time = TimeProvider.System;
        using var metrics = new MetricsCollector();
        using var signals = new ShutdownSignals(signal => LogStopRequested(logger, signal, pipelineOptions.Limits.DrainTimeout));

        MetricsEndpoint? endpoint = null;
        if (options.Metrics.Port > 0)
        {
            try
            {
                endpoint = MetricsEndpoint.Start(options.Metrics.Port, metrics, () => !signals.DrainRequested.IsCancellationRequested);
                LogMetricsListening(logger, endpoint.Port);
            }
            catch (SocketException ex)
            {
                stderr.WriteLine($"kawa run: metrics.port: cannot listen on 127.0.0.1:{options.Metrics.Port} ({ex.Message}). Choose another port with --set metrics.port=N, or 0 to disable the endpoint.");
                return ExitCodes.ConfigInvalid;
            }
        }

        var disposables = new List<object>();
        try
        {
            Pipeline pipeline;
            try
            {
                pipeline = await BuildAsync(pipelineOptions, drain, loggerFactory, time, disposables, signals.DrainRequested).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (signals.DrainRequested.IsCancellationRequested)
            {
                stderr.WriteLine("kawa run: interrupted while starting; nothing was read.");
                return ExitCodes.Interrupted;
            }
            catch (Exception ex)
            {
                return ReportStartFailure(ex, stderr);
            }

            var status = new StatusReporter(metrics, Console.IsErrorRedirected ? null : stderr, logger, time, LagProbe(disposables));
            await using var statusScope = status.ConfigureAwait(false);
            var run = pipeline.RunAsync(signals.DrainRequested);
            var finished = await Task.WhenAny(run, signals.Forced, HungDrainAsync(pipelineOptions.Limits.DrainTimeout, time, signals.DrainRequested)).ConfigureAwait(false);
            if (finished != run && !signals.Forced.IsCompleted)
            {
                stderr.WriteLine($"\nkawa run: the drain did not finish within {pipelineOptions.Limits.DrainTimeout} plus {HungDrainGrace.TotalSeconds:0} s (a component ignores cancellation); exiting. Messages not yet acked are redelivered by the source.");
                disposables.Clear();
                return ExitCodes.DrainTimeout;
            }

            if (finished != run)
            {
                stderr.WriteLine($"\nkawa run: second signal ({signals.Forced.Result}): exiting now without finishing the drain. Messages not yet acked were not lost: the source redelivers them (JetStream after ackWait; a file or stdin must be read again).");
                disposables.Clear();
                return ExitCodes.Interrupted;
            }

            try
            {
                await run.ConfigureAwait(false);
                await status.CompleteAsync(pipeline.Name, signals.DrainRequested.IsCancellationRequested ? "stopped (drained)" : "finished").ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (PipelineStageException ex)
            {
                await status.CompleteAsync(pipeline.Name, "failed").ConfigureAwait(false);
                return ReportStageFailure(ex, pipelineOptions, stderr);
            }
            catch (OperationCanceledException ex)
            {
                await status.CompleteAsync(pipeline.Name, "timed out draining").ConfigureAwait(false);
                stderr.WriteLine($"kawa run: {ex.Message} Raise pipeline.limits.drainTimeout (now {pipelineOptions.Limits.DrainTimeout}) if the destination needs longer to flush.");
                return ExitCodes.DrainTimeout;
            }
        }
        finally
        {
            foreach (var disposable in disposables)
            {
                await DisposeQuietlyAsync(disposable).ConfigureAwait(false);
            }

            if (endpoint is not null)
            {
                await endpoint.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The consumer lag of a JetStream source (messages not yet delivered), for the status line and /metrics.</summary>
    internal static Func<CancellationToken, ValueTask<long>>? LagProbe(IEnumerable<object> components)
    {
        if (components.OfType<Adapters.JetStreamEventSource>().FirstOrDefault() is not { } jetStream)
        {
            return null;
        }

        return async cancellationToken => (await jetStream.Inner.GetLagAsync(cancellationToken).ConfigureAwait(false)).Pending;
    }

    /// <summary>How long after the drain timeout the process waits for an aborted run to return before it exits anyway.</summary>
    internal static readonly TimeSpan HungDrainGrace = TimeSpan.FromSeconds(5);

    // Completes once a drain was asked for and has had its timeout plus a grace period: the last resort when a
    // component ignores cancellation, so SIGTERM always ends the process.
    private static async Task HungDrainAsync(TimeSpan drainTimeout, TimeProvider time, CancellationToken drainRequested)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (drainRequested.Register(() => started.TrySetResult()))
        {
            await started.Task.ConfigureAwait(false);
        }

        await Task.Delay(drainTimeout + HungDrainGrace, time, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Maps the validated configuration onto the core builder.</summary>
    internal static async Task<Pipeline> BuildAsync(KawaPipelineOptions options, bool drain, ILoggerFactory loggerFactory, TimeProvider time, List<object> disposables, CancellationToken cancellationToken)
    {
        var stdoutLock = new SemaphoreSlim(1, 1);
        disposables.Add(stdoutLock);
        var jetStreamSource = options.Source is NatsJetStreamSourceOptions;
        var source = await Create("pipeline.source", () => DaemonComponents.CreateSourceAsync(options.Source!, drain, time, cancellationToken)).ConfigureAwait(false);
        disposables.Add(source);
        var destination = await Create("pipeline.destination", () => DaemonComponents.CreateDestinationAsync(options.Destination!, deadLetter: false, stdoutLock, time, loggerFactory, jetStreamSource, cancellationToken)).ConfigureAwait(false);
        disposables.Add(destination);
        DeadLetterDestination? deadLetters = null;
        if (options.DeadLetter is not null)
        {
            var inner = await Create("pipeline.deadLetter", () => DaemonComponents.CreateDestinationAsync(options.DeadLetter, deadLetter: true, stdoutLock, time, loggerFactory, jetStreamSource, cancellationToken)).ConfigureAwait(false);
            disposables.Add(inner);
            deadLetters = new DeadLetterDestination(inner);
        }

        var builder = Pipeline.Create(options.Name!).From(source);
        var segment = PipelineOptions.DefaultSegmentSize;
        foreach (var stage in DaemonComponents.CreateHandlers(options, time))
        {
            var index = options.Handlers.IndexOf(stage.Options);
            var stageDeadLetters = deadLetters;
            if (index >= 0 && stage.Options.DeadLetter is { } own)
            {
                var inner = await Create($"pipeline.handlers[{index}].deadLetter", () => DaemonComponents.CreateDestinationAsync(own, deadLetter: true, stdoutLock, time, loggerFactory, jetStreamSource, cancellationToken)).ConfigureAwait(false);
                disposables.Add(inner);
                stageDeadLetters = new DeadLetterDestination(inner);
            }

            builder = builder.Handle(stage.Name, stage.Handler, ToStageOptions(stage.Options, segment, stageDeadLetters, stage.Name));
        }

        return builder.To(destination).Build(new PipelineOptions
        {
            MaxInFlightMessages = options.Limits.MaxInFlightMessages,
            MaxInFlightBytes = options.Limits.MaxInFlightBytes,
            DrainTimeout = options.Limits.DrainTimeout,
            TimeProvider = time,
            LoggerFactory = loggerFactory,
            SegmentSize = segment,
        });
    }

    /// <summary>A handler stage's engine options from its configuration.</summary>
    /// <param name="options">The handler's validated options.</param>
    /// <param name="segmentSize">The engine's segment size: the configured capacity counts messages, the engine buffers segments.</param>
    /// <param name="deadLetters">The stage's dead-letter target (its own, else the pipeline's), or <see langword="null"/>.</param>
    /// <param name="name">The stage's name, for error messages.</param>
    internal static StageOptions ToStageOptions(HandlerOptions options, int segmentSize, DeadLetterDestination? deadLetters, string name) => new()
    {
        MaxDegreeOfParallelism = options.Parallelism,
        BoundedCapacity = Math.Max(1, (options.Capacity + segmentSize - 1) / segmentSize),
        EnsureOrdered = options.Ordered,
        KeyOrdered = options.KeyOrdered,
        ErrorPolicy = ToPolicy(options.ErrorPolicy, deadLetters, $"pipeline handler '{name}'"),
        // A message failing on its last allowed delivery (a source's delivery limit) is kept in the dead-letter target
        // when there is one, rather than only terminated.
        PoisonPolicy = deadLetters is null ? ErrorPolicy.Terminate : ErrorPolicy.DeadLetter(deadLetters),
    };

    /// <summary>The core error policy for a configured one.</summary>
    internal static ErrorPolicy ToPolicy(ErrorPolicyOptions options, DeadLetterDestination? deadLetters, string where) => options.Type switch
    {
        "fatal" => ErrorPolicy.Fatal,
        "skip" => ErrorPolicy.Skip,
        "nack" => ErrorPolicy.NegativeAck(options.NackDelay),
        "deadLetter" => ErrorPolicy.DeadLetter(deadLetters ?? throw new InvalidOperationException($"{where}: errorPolicy deadLetter needs pipeline.deadLetter")),
        "retry" => ErrorPolicy.Retry(options.MaxAttempts - 1, options.InitialDelay, options.MaxDelay)
            .Then(ToPolicy(new ErrorPolicyOptions { Type = options.Then, NackDelay = options.NackDelay }, deadLetters, where)),
        _ => throw new InvalidOperationException($"{where}: unknown error policy '{options.Type}'"),
    };

    private static async Task<T> Create<T>(string path, Func<Task<T>> create)
    {
        try
        {
            return await create().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException and not ComponentException)
        {
            throw new ComponentException(path, ex);
        }
    }

    private static int ReportStartFailure(Exception ex, TextWriter stderr)
    {
        var path = ex is ComponentException c ? c.Path : "pipeline";
        var cause = ex is ComponentException ? ex.InnerException! : ex;
        switch (cause)
        {
            case NotSupportedException:
                stderr.WriteLine($"kawa run: {path}: {cause.Message}. Nothing was started.");
                return ExitCodes.NotAvailable;
            case OptionsValidationException:
                stderr.WriteLine($"kawa run: the pipeline options were rejected: {cause.Message}");
                return ExitCodes.ConfigInvalid;
            case FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException:
                stderr.WriteLine($"kawa run: {path}: cannot open: {cause.Message} Check the path (relative paths are relative to the current directory, {Environment.CurrentDirectory}). Nothing was started.");
                return ExitCodes.ConfigInvalid;
            case var _ when IsConnectionFailure(cause):
                stderr.WriteLine($"kawa run: {path}: cannot connect: {cause.Message}. Check that the server is running and reachable and the credentials are right. Nothing was started.");
                return ExitCodes.ConnectionFailure;
            default:
                stderr.WriteLine($"kawa run: {path}: could not be created: {cause.GetType().Name}: {cause.Message}. Nothing was started.");
                return ExitCodes.RuntimeFailure;
        }
    }

    private static int ReportStageFailure(PipelineStageException ex, KawaPipelineOptions options, TextWriter stderr)
    {
        var cause = ex.InnerException!;
        var input = options.Source switch
        {
            FileSourceOptions f => $"file '{f.Path}'",
            StdinSourceOptions => "standard input",
            NatsJetStreamSourceOptions js => $"JetStream stream '{js.Stream}'",
            _ => options.Source!.Type,
        };
        var hint = ex.Stage switch
        {
            "source" => "Check pipeline.source: that the input exists and is readable, or that the server is up.",
            "destination" => "Check pipeline.destination: disk space and permissions, or that the server is up.",
            var s when s.StartsWith("handler:", StringComparison.Ordinal) =>
                $"To keep running past such input, give handler '{s["handler:".Length..]}' an errorPolicy of 'deadLetter' (with pipeline.deadLetter) or 'skip'; or fix the input.",
            _ => string.Empty,
        };
        var connection = IsConnectionFailure(cause);
        stderr.WriteLine($"kawa run: pipeline '{ex.Pipeline}' stopped: stage '{ex.Stage}' failed reading {input}: {cause.GetType().Name}: {cause.Message}");
        stderr.WriteLine($"  Nothing unfinished was acked (it was negatively acked, for redelivery). {hint}");
        return connection ? ExitCodes.ConnectionFailure : ExitCodes.RuntimeFailure;
    }

    /// <summary>Whether an exception (or one inside it) means a server could not be reached or refused us.</summary>
    internal static bool IsConnectionFailure(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is SocketException or NatsConnectionException or NatsAuthenticationException or NatsNoRespondersException or HttpRequestException
                or Amazon.Runtime.AmazonServiceException { StatusCode: System.Net.HttpStatusCode.Unauthorized or System.Net.HttpStatusCode.Forbidden })
            {
                // An S3 401/403 (unknown access key, bad signature, no permission) is a refused connection, not a bug.
                return true;
            }
        }

        return false;
    }

    private static async ValueTask DisposeQuietlyAsync(object component)
    {
        try
        {
            switch (component)
            {
                case IAsyncDisposable asyncDisposable:
                    await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                    break;
                case IDisposable disposable:
                    disposable.Dispose();
                    break;
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // Closing an input or output that already failed: the run's outcome was reported.
        }
    }

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "{Signal} received: draining (up to {DrainTimeout}); a second signal exits at once")]
    private static partial void LogStopRequested(ILogger logger, PosixSignal signal, TimeSpan drainTimeout);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "metrics on http://127.0.0.1:{Port}/metrics, health on /healthz")]
    private static partial void LogMetricsListening(ILogger logger, int port);

    private sealed class ComponentException(string path, Exception inner) : Exception(inner.Message, inner)
    {
        public string Path { get; } = path;
    }
}
