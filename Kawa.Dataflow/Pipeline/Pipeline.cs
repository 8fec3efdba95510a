using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow;

/// <summary>
/// A built pipeline: reads a source, runs messages through handler stages and writes them to a destination, with
/// at-least-once delivery through ack tokens.
/// </summary>
/// <remarks>
/// <para>Build one with <see cref="Create(string)"/>:
/// <c>Pipeline.Create("orders").From(source).Handle("parse", parser).To(destination).Build(options)</c>.
/// A pipeline runs once.</para>
/// <para><b>In flight.</b> At most <see cref="MaxUnsettledMessages"/> (= <see cref="PipelineOptions.MaxInFlightMessages"/>)
/// source messages are ever read but not yet finally settled, counting those a destination holds for a deferred ack:
/// the source is read only below that figure, and one message at a time. Payload bytes in flight stay below
/// <see cref="PipelineOptions.MaxInFlightBytes"/> plus one message. Stage capacities bound the buffered segments
/// further but never raise these limits. Size a JetStream consumer's <c>max_ack_pending</c> to at least
/// <see cref="MaxUnsettledMessages"/>.</para>
/// <para><b>How <see cref="RunAsync(CancellationToken)"/> ends.</b></para>
/// <list type="bullet">
/// <item>The source reports end of stream: everything drains, the destination (and every dead-letter destination)
/// is flushed, and the task completes once every token read has its final outcome.</item>
/// <item>The caller's token fires: a graceful drain. Receiving stops at once, in-flight work finishes, destinations
/// are flushed. If that finishes within <see cref="PipelineOptions.DrainTimeout"/> the task completes normally (the
/// stop was asked for and nothing was lost). Otherwise every stage switches to abort mode: whatever is unfinished is
/// negatively acked without delay, handlers and sends see their token fire, flushes are told to nack what they hold,
/// and the task throws <see cref="OperationCanceledException"/>.</item>
/// <item>A stage fails fatally (source or destination throws, or a handler throws under <see cref="ErrorPolicy.Fatal"/>):
/// the run aborts the same way (nothing unfinished is acked) and throws <see cref="PipelineStageException"/> naming
/// the stage, with the original exception inside. Only the first failure is reported.</item>
/// </list>
/// </remarks>
public sealed class Pipeline
{
    private readonly PipelineOptions _options;
    private readonly Func<PipelineRun, (ISourcePump Pump, Task Completion)> _connect;
    private int _started;

    internal Pipeline(string name, PipelineOptions options, bool runsToCompletion, Func<PipelineRun, (ISourcePump, Task)> connect)
    {
        Name = name;
        _options = options;
        RunsToCompletion = runsToCompletion;
        _connect = connect;
    }

    /// <summary>Whether segments run from source to destination on one worker each (see <see cref="PipelineOptions.RunToCompletion"/>).</summary>
    internal bool RunsToCompletion { get; }

    /// <summary>The pipeline's name: the <c>kawa.pipeline</c> tag on its telemetry.</summary>
    public string Name { get; }

    /// <summary>
    /// The most source messages that can be read but not yet finally settled (acked, negatively acked, terminated):
    /// exactly <see cref="PipelineOptions.MaxInFlightMessages"/>. Adapters compare it with their broker's limit
    /// (JetStream <c>max_ack_pending</c> should be at least this).
    /// </summary>
    public int MaxUnsettledMessages => _options.MaxInFlightMessages;

    /// <summary>The longest this library's destinations in the pipeline (dead-letter destinations included) may hold a
    /// message before its final outcome by design; zero when none holds or none is ours.</summary>
    internal TimeSpan LongestDestinationHold { get; init; }

    /// <summary>The payload-byte limit: the source is read only while fewer bytes than this are unsettled.</summary>
    public long MaxInFlightBytes => _options.MaxInFlightBytes;

    /// <summary>Test hook: called whenever the pump starts waiting for in-flight room.</summary>
    internal Action? OnPumpWaitingForRoom { get; set; }

    /// <summary>Test hook: called whenever the pump waits for the first stage to accept a segment.</summary>
    internal Action? OnPumpWaitingForCapacity { get; set; }

    /// <summary>Test hook: called when the end of the run waits for outcomes still owed after every flush returned or an abort.</summary>
    internal Action? OnWaitingForStragglers { get; set; }

    /// <summary>Test hook: how long the end of the run waits for those outcomes.</summary>
    internal TimeSpan StragglerGrace { get; set; } = PipelineRun.DefaultStragglerGrace;

    /// <summary>The current run, while one is under way (tests read its in-flight figures).</summary>
    internal PipelineRun? CurrentRun { get; private set; }

    /// <summary>Starts building a pipeline.</summary>
    /// <param name="name">The pipeline's name, used in telemetry tags, logs and errors.</param>
    public static PipelineBuilder Create(string name) => new(name);

    /// <summary>Runs the pipeline until the source ends, <paramref name="cancellationToken"/> fires (then drains), or a stage fails.</summary>
    /// <param name="cancellationToken">Starts a graceful drain, bounded by <see cref="PipelineOptions.DrainTimeout"/>.</param>
    /// <exception cref="PipelineStageException">A stage failed fatally.</exception>
    /// <exception cref="OperationCanceledException">The drain after cancellation timed out; unfinished messages were negatively acked.</exception>
    /// <exception cref="InvalidOperationException">The pipeline has already run.</exception>
    public async Task RunAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException($"Pipeline '{Name}' has already run; build a new one to run again.");
        }

        var run = new PipelineRun(Name, _options)
        {
            PumpWaitingForRoom = OnPumpWaitingForRoom,
            PumpWaitingForCapacity = OnPumpWaitingForCapacity,
            WaitingForStragglers = OnWaitingForStragglers,
            StragglerGrace = StragglerGrace,
        };
        CurrentRun = run;
        try
        {
            var (pump, completion) = _connect(run);
            Log.Started(run.Logger, Name, _options.MaxInFlightMessages, _options.MaxInFlightBytes, RunsToCompletion ? "run to completion" : "staged");
            using (cancellationToken.UnsafeRegister(static s => ((PipelineRun)s!).BeginDrain(), run))
            {
                await pump.RunAsync().ConfigureAwait(false);
                await completion.ConfigureAwait(false);
                await run.FlushAllAsync().ConfigureAwait(false);
                await run.WaitForSettledAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            run.Dispose();
        }

        if (run.Failure is { } failure)
        {
            throw new PipelineStageException(Name, failure.Stage, failure.Exception);
        }

        if (run.DrainTimedOut)
        {
            throw new OperationCanceledException(
                run.DrainEndedByCaller
                    ? $"Pipeline '{Name}' had not drained when its host's shutdown deadline passed (before DrainTimeout {_options.DrainTimeout}); unfinished messages were negatively acked for redelivery."
                    : $"Pipeline '{Name}' did not drain within {_options.DrainTimeout}; unfinished messages were negatively acked for redelivery.",
                cancellationToken);
        }

        Log.Completed(run.Logger, Name);
    }
}
