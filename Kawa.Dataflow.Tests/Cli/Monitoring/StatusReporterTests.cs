using Kawa.Dataflow.Cli.Monitoring;
using Kawa.Dataflow.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Tests.Cli.Monitoring;

public class StatusReporterTests
{
    [Test]
    public async Task ProbeLagAsync_SourceAnswers_ShownInLineAndPublishedAsGauge()
    {
        using var metrics = new MetricsCollector();
        await using var status = new StatusReporter(metrics, terminal: null, NullLogger.Instance, new FakeTimeProvider(), _ => ValueTask.FromResult(1234L));

        var lag = await status.ProbeLagAsync(CancellationToken.None);

        Assert.That(lag, Is.EqualTo(1234));
        Assert.That(status.Line(lag), Does.EndWith("lag 1,234"));
        using var text = new StringWriter();
        metrics.WritePrometheus(text);
        Assert.That(text.ToString(), Does.Contain("# TYPE kawa_source_lag gauge\nkawa_source_lag 1234\n"));
    }

    [Test]
    public async Task ProbeLagAsync_LaterAnswer_ReplacesTheGaugeValue()
    {
        using var metrics = new MetricsCollector();
        var answers = new Queue<long>([500, 20]);
        await using var status = new StatusReporter(metrics, terminal: null, NullLogger.Instance, new FakeTimeProvider(), _ => ValueTask.FromResult(answers.Dequeue()));

        await status.ProbeLagAsync(CancellationToken.None);
        await status.ProbeLagAsync(CancellationToken.None);

        Assert.That(metrics.Total(StatusReporter.LagGauge), Is.EqualTo(20), "a gauge holds the last value, not a sum");
    }

    [Test]
    public async Task ProbeLagAsync_SourceFails_ShowsUnknownAndKeepsRunning()
    {
        using var metrics = new MetricsCollector();
        await using var status = new StatusReporter(metrics, terminal: null, NullLogger.Instance, new FakeTimeProvider(), _ => throw new TimeoutException("no answer"));

        var lag = await status.ProbeLagAsync(CancellationToken.None);

        Assert.That(lag, Is.Null);
        Assert.That(status.Line(lag), Does.EndWith("lag ?"));
    }

    [Test]
    public async Task Line_NoProbe_ShowsNoLag()
    {
        using var metrics = new MetricsCollector();
        await using var status = new StatusReporter(metrics, terminal: null, NullLogger.Instance, new FakeTimeProvider());

        Assert.That(await status.ProbeLagAsync(CancellationToken.None), Is.Null);
        Assert.That(status.Line(), Does.Not.Contain("lag"));
    }
}
