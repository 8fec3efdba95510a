using System.Diagnostics.Metrics;
using Kawa.Dataflow.Cli.Monitoring;

namespace Kawa.Dataflow.Tests.Cli.Monitoring;

public class MetricsCollectorTests
{
    [Test]
    public void WritePrometheus_CounterAndGauge_UsesPrometheusNamesLabelsAndTypes()
    {
        using var collector = new MetricsCollector();
        using var meter = new Meter("Kawa.Dataflow.Nats");
        var counter = meter.CreateCounter<long>("kawa.test.sent", description: "Sent.");
        var gauge = meter.CreateUpDownCounter<long>("kawa.test.open");
        counter.Add(2, new KeyValuePair<string, object?>("kawa.stage", "a\"b"));
        counter.Add(3, new KeyValuePair<string, object?>("kawa.stage", "a\"b"));
        gauge.Add(5);
        gauge.Add(-1);

        using var text = new StringWriter();
        collector.WritePrometheus(text);

        Assert.Multiple(() =>
        {
            Assert.That(text.ToString(), Does.Contain("# TYPE kawa_test_sent_total counter\nkawa_test_sent_total{kawa_stage=\"a\\\"b\"} 5\n"));
            Assert.That(text.ToString(), Does.Contain("# TYPE kawa_test_open gauge\nkawa_test_open 4\n"));
            Assert.That(collector.Total("kawa.test.sent"), Is.EqualTo(5));
        });
    }
}
