using System.Globalization;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Cli.Monitoring;

/// <summary>
/// Reports progress while a pipeline runs: a live status line rewritten in place on a terminal (every second), or a
/// structured log entry every <see cref="LogInterval"/> when standard error is not a terminal; and a final summary.
/// </summary>
/// <remarks>With a lag probe (a JetStream source), each tick also asks how many messages the consumer has not delivered
/// yet, shows it as <c>lag</c>, and publishes it as the gauge <see cref="LagGauge"/>. A probe that fails or takes longer
/// than <see cref="LagTimeout"/> shows <c>lag ?</c>; it never stops the run.</remarks>
internal sealed partial class StatusReporter : IAsyncDisposable
{
    /// <summary>How often progress is logged when standard error is not a terminal.</summary>
    public static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(10);

    /// <summary>The gauge the consumer lag is published as.</summary>
    public const string LagGauge = "kawa.source.lag";

    /// <summary>How long one lag probe may take.</summary>
    public static readonly TimeSpan LagTimeout = TimeSpan.FromSeconds(2);

    private readonly MetricsCollector _metrics;
    private readonly TextWriter? _terminal;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly Func<CancellationToken, ValueTask<long>>? _lagProbe;
    private double _lastIn;
    private double _lastOut;
    private long _lastTick;

    /// <summary>Starts reporting.</summary>
    /// <param name="metrics">Where the figures come from.</param>
    /// <param name="terminal">The terminal to draw the status line on, or <see langword="null"/> to log instead.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="lagProbe">Asks the source how many messages it has not delivered yet, or <see langword="null"/> when it cannot tell.</param>
    public StatusReporter(MetricsCollector metrics, TextWriter? terminal, ILogger logger, TimeProvider timeProvider, Func<CancellationToken, ValueTask<long>>? lagProbe = null)
    {
        _metrics = metrics;
        _lagProbe = lagProbe;
        _terminal = terminal;
        _logger = logger;
        _time = timeProvider;
        _started = _lastTick = timeProvider.GetTimestamp();
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>Stops the live line and writes the summary.</summary>
    /// <param name="pipeline">The pipeline's name.</param>
    /// <param name="outcome">How the run ended, in words.</param>
    public async Task CompleteAsync(string pipeline, string outcome)
    {
        await StopAsync().ConfigureAwait(false);
        if (_terminal is not null)
        {
            _terminal.Write("\r\u001b[K");
        }

        _metrics.RecordObservables();
        var unmapped = (long)_metrics.Total(CliTelemetry.UnmappedFieldsName);
        if (unmapped > 0)
        {
            LogUnmappedFields(_logger, unmapped);
        }

        if (!_logger.IsEnabled(LogLevel.Information))
        {
            return;
        }

        var seconds = _time.GetElapsedTime(_started).TotalSeconds;
        var received = (long)_metrics.Total("kawa.messages.received");
        var acked = (long)_metrics.Total("kawa.messages.acked");
        var nacked = (long)_metrics.Total("kawa.messages.negative_acked");
        var terminated = (long)_metrics.Total("kawa.messages.terminated");
        var deadLettered = (long)_metrics.Total("kawa.messages.dead_lettered");
        var skipped = (long)_metrics.Total("kawa.messages.skipped");
        var files = (long)_metrics.Total("kawa.lake.files.committed");
        LogSummary(_logger, pipeline, outcome, seconds, received, acked, nacked, terminated, deadLettered, skipped, files);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>The status line's text for the figures since the last tick.</summary>
    /// <param name="lag">The consumer lag, or <see langword="null"/> when unknown; nothing is shown without a probe.</param>
    internal string Line(long? lag = null)
    {
        var now = _time.GetTimestamp();
        var seconds = Math.Max(_time.GetElapsedTime(_lastTick, now).TotalSeconds, 1e-3);
        var received = _metrics.Total("kawa.messages.received");
        var acked = _metrics.Total("kawa.messages.acked");
        var inRate = (received - _lastIn) / seconds;
        var outRate = (acked - _lastOut) / seconds;
        (_lastIn, _lastOut, _lastTick) = (received, acked, now);
        return string.Create(
            CultureInfo.InvariantCulture,
            $"in {inRate,8:N0}/s  out {outRate,8:N0}/s  in flight {_metrics.Total("kawa.messages.in_flight"),7:N0}  acked {acked,10:N0}  dead-lettered {_metrics.Total("kawa.messages.dead_lettered"):N0}  files {_metrics.Total("kawa.lake.files.committed"):N0}{LagText(lag)}");
    }

    private string LagText(long? lag) => _lagProbe is null ? string.Empty : lag is { } value ? string.Create(CultureInfo.InvariantCulture, $"  lag {value:N0}") : "  lag ?";

    /// <summary>One probe: the lag, published as a gauge, or <see langword="null"/> if the source did not answer in time.</summary>
    internal async Task<long?> ProbeLagAsync(CancellationToken cancellationToken)
    {
        if (_lagProbe is null)
        {
            return null;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(LagTimeout);
        try
        {
            var lag = await _lagProbe(timeout.Token).ConfigureAwait(false);
            _metrics.SetGauge(LagGauge, "Messages the source's consumer has not delivered yet.", lag);
            return lag;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogLagUnknown(_logger, ex.Message);
            return null;
        }
    }

    private async Task StopAsync()
    {
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
        }

        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task LoopAsync()
    {
        using var timer = new PeriodicTimer(_terminal is null ? LogInterval : TimeSpan.FromSeconds(1), _time);
        while (await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false))
        {
            var line = Line(await ProbeLagAsync(_stop.Token).ConfigureAwait(false));
            if (_terminal is not null)
            {
                _terminal.Write("\r\u001b[K" + line);
                _terminal.Flush();
            }
            else
            {
                LogProgress(_logger, line);
            }
        }
    }

    [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "consumer lag unknown: {Reason}")]
    private static partial void LogLagUnknown(ILogger logger, string reason);

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "progress: {Status}")]
    private static partial void LogProgress(ILogger logger, string status);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "{Unmapped} input field(s) matched no Parquet column and were dropped (counted as kawa_fields_unmapped_total); list them in the destination's columns or set its extraColumn to keep them")]
    private static partial void LogUnmappedFields(ILogger logger, long unmapped);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "pipeline '{Pipeline}' {Outcome} after {Seconds:F1} s: {Received} received, {Acked} acked, {Nacked} negatively acked, {Terminated} terminated, {DeadLettered} dead-lettered, {Skipped} skipped, {Files} files committed")]
    private static partial void LogSummary(ILogger logger, string pipeline, string outcome, double seconds, long received, long acked, long nacked, long terminated, long deadLettered, long skipped, long files);
}
