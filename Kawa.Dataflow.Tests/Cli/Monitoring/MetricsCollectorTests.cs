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

    [Test]
    public void Record_RepeatedTagSets_SumsEachTagSetIntoItsOwnSeries()
    {
        using var collector = new MetricsCollector();
        using var meter = new Meter("Kawa.Dataflow.Nats");
        var counter = meter.CreateCounter<long>("kawa.test.acked");
        for (var i = 0; i < 10; i++)
        {
            counter.Add(1, new KeyValuePair<string, object?>("kawa.pipeline", "a"), new KeyValuePair<string, object?>("kawa.stage", "x"));
            counter.Add(2, new KeyValuePair<string, object?>("kawa.pipeline", "b"), new KeyValuePair<string, object?>("kawa.stage", "x"));
            // The same tags in another order are the same series.
            counter.Add(4, new KeyValuePair<string, object?>("kawa.stage", "x"), new KeyValuePair<string, object?>("kawa.pipeline", "a"));
        }

        using var text = new StringWriter();
        collector.WritePrometheus(text);

        Assert.Multiple(() =>
        {
            Assert.That(text.ToString(), Does.Contain("kawa_test_acked_total{kawa_pipeline=\"a\",kawa_stage=\"x\"} 50\n"));
            Assert.That(text.ToString(), Does.Contain("kawa_test_acked_total{kawa_pipeline=\"b\",kawa_stage=\"x\"} 20\n"));
            Assert.That(collector.Total("kawa.test.acked"), Is.EqualTo(70));
        });
    }

    [Test]
    public void Record_ManyDistinctTagValues_CountsEveryOneBeyondTheCache()
    {
        using var collector = new MetricsCollector();
        using var meter = new Meter("Kawa.Dataflow.Nats");
        var counter = meter.CreateCounter<long>("kawa.test.wide");
        for (var round = 0; round < 2; round++)
        {
            for (var i = 0; i < 100; i++)
            {
                counter.Add(1, new KeyValuePair<string, object?>("kawa.partition", i));
            }
        }

        using var text = new StringWriter();
        collector.WritePrometheus(text);

        Assert.Multiple(() =>
        {
            Assert.That(collector.Total("kawa.test.wide"), Is.EqualTo(200));
            Assert.That(text.ToString(), Does.Contain("kawa_test_wide_total{kawa_partition=\"0\"} 2\n"));
            Assert.That(text.ToString(), Does.Contain("kawa_test_wide_total{kawa_partition=\"99\"} 2\n"));
        });
    }
}
