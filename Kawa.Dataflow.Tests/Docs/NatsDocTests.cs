using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/nats.md's defaults and metric names against the NATS adapters.</summary>
public class NatsDocTests
{
    /// <summary>A default as nats.md writes it.</summary>
    private static string Doc(object? value) => value switch
    {
        null => "unset",
        bool b => b ? "`true`" : "`false`",
        Enum e => $"`{e}`",
        TimeSpan t when t < TimeSpan.FromSeconds(1) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds} ms"),
        TimeSpan t => string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds} s"),
        int or long => string.Format(CultureInfo.InvariantCulture, "{0:N0}", value),
        double d => d.ToString(CultureInfo.InvariantCulture),
        _ => throw new ArgumentException($"no doc form for {value}"),
    };

    [Test]
    public void SourceOptionsTable_Defaults_AreTheOptionsDefaults()
    {
        var o = new NatsJetStreamSourceOptions();
        var table = DocText.Table("nats.md", "## `NatsJetStreamSource` options");
        var code = new Dictionary<string, string>
        {
            ["CreateOrUpdate"] = Doc(o.CreateOrUpdate),
            ["DeliverPolicy"] = Doc(o.DeliverPolicy),
            ["AckPolicy"] = Doc(o.AckPolicy),
            ["AckWait"] = Doc(o.AckWait),
            ["MaxDeliver"] = Doc(o.MaxDeliver),
            ["MaxAckPending"] = Doc(o.MaxAckPending),
            ["PrefetchMessages / PrefetchBytes"] = $"{Doc(o.PrefetchMessages)} / {Doc(o.PrefetchBytes)}",
            ["PullExpires"] = Doc(o.PullExpires),
            ["AutoInProgressFraction"] = Doc(o.AutoInProgressFraction),
            ["StopAtEnd"] = Doc(o.StopAtEnd),
            ["DrainCheckInterval"] = Doc(o.DrainCheckInterval),
            ["DecodeFailure"] = Doc(o.DecodeFailure),
        };

        Assert.That(o.FilterSubjects, Is.Empty);
        Assert.That(table["FilterSubjects"], Does.StartWith("empty"));
        foreach (var (option, value) in code)
        {
            Assert.That(table.TryGetValue(option, out var cell), Is.True, $"nats.md documents {option}");
            Assert.That(cell!.Split(" | ")[0], Is.EqualTo(value), option);
        }
    }

    [Test]
    public void DestinationAndCoreSourceDefaults_AreTheOptionsDefaults()
    {
        var docs = DocText.Read("nats.md");
        var js = new NatsJetStreamDestinationOptions<byte[]>();

        Assert.That(docs, Does.Contain($"`MaxOutstandingPubAcks` ({js.MaxOutstandingPubAcks})"));
        Assert.That(docs, Does.Contain($"`PubAckTimeout` ({Doc(js.PubAckTimeout)})"));
        Assert.That(docs, Does.Contain($"`{js.MsgId}` (default)"));
        Assert.That(docs, Does.Contain($"`Capacity`, default {new NatsSourceOptions().Capacity}"));
    }

    [Test]
    public void ConnectionSection_ReconnectAndKeepAliveDefaults_AreTheClients()
    {
        var docs = DocText.Flat("nats.md");
        var o = new NatsConnectionOptions();

        Assert.That(docs, Does.Contain($"`ReconnectWait` ({Doc(o.ReconnectWait)}), doubled each round up to {NatsConnection.MaxBackoffFactor} × `ReconnectWait`"));
        Assert.That(docs, Does.Contain($"`ReconnectJitter` ({Doc(o.ReconnectJitter)})"));
        Assert.That(docs, Does.Contain($"`PingInterval` ({o.PingInterval.TotalMinutes} min)"));
        Assert.That(docs, Does.Contain($"`MaxPingsOut` ({o.MaxPingsOut})"));
        Assert.That(docs, Does.Contain($"`ReconnectBufferTimeout`, {Doc(o.ReconnectBufferTimeout)}"));
        Assert.That(o.ReconnectBufferBytes, Is.EqualTo(8 * 1024 * 1024));
        Assert.That(docs, Does.Contain("(`ReconnectBufferBytes`, 8 MiB;"));
        Assert.That(o.MaxReconnectAttempts, Is.EqualTo(-1));
        Assert.That(docs, Does.Contain("(-1, the default: forever)"));
    }

    [Test]
    public void MetricsSection_ListsEveryInstrumentOfTheNatsMeter()
    {
        RuntimeHelpers.RunClassConstructor(typeof(NatsTelemetry).TypeHandle);
        RuntimeHelpers.RunClassConstructor(typeof(NatsPipelineTelemetry).TypeHandle);
        var instruments = new HashSet<string>(StringComparer.Ordinal);
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == NatsTelemetry.MeterName)
                {
                    instruments.Add(instrument.Name);
                }
            };
            listener.Start();
        }

        var docs = DocText.Read("nats.md");
        var section = docs[docs.IndexOf($"## Metrics (meter `{NatsTelemetry.MeterName}`)", StringComparison.Ordinal)..];
        var documented = Regex.Matches(section, "`(nats\\.[a-z_]+\\.[a-z_.]+)`").Select(m => m.Groups[1].Value).ToHashSet();

        Assert.That(instruments, Is.Not.Empty);
        Assert.That(documented, Is.EquivalentTo(instruments));
    }
}
