using System.Globalization;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Cli.Configuration;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/config.md's default columns, value forms and examples against the options classes and the loader.</summary>
public class ConfigDocTests
{
    /// <summary>A default as config.md writes it: numbers plain, durations and strings in backticks.</summary>
    private static string Doc(object? value) => value switch
    {
        bool b => b ? "true" : "false",
        int or long => Convert.ToString(value, CultureInfo.InvariantCulture)!,
        TimeSpan t => $"`{t:c}`",
        string s => $"`{s}`",
        List<string> l => $"`[{string.Join(", ", l.Select(x => $"\"{x}\""))}]`",
        List<HandlerOptions?> { Count: 0 } => "`[]`",
        _ => throw new ArgumentException($"no doc form for {value}"),
    };

    /// <summary>The value at the start of a default cell, without a trailing remark such as <c>(64 MiB)</c>.</summary>
    private static string Value(string cell) => cell.Split(" | ")[0].Split(" (")[0];

    private static void AssertDefaults(string heading, IReadOnlyDictionary<string, object?> code)
    {
        var table = DocText.Table("config.md", heading);
        foreach (var (key, value) in code)
        {
            Assert.That(table.ContainsKey(key), Is.True, $"config.md '{heading}' documents {key}");
            Assert.That(Value(table[key]), Is.EqualTo(Doc(value)), $"config.md '{heading}': default of {key}");
        }
    }

    [Test]
    public void PipelineTable_Defaults_AreTheOptionsDefaults()
    {
        var pipeline = new KawaPipelineOptions();
        AssertDefaults("## `pipeline`", new Dictionary<string, object?>
        {
            ["handlers"] = pipeline.Handlers,
            ["limits.maxInFlightMessages"] = pipeline.Limits.MaxInFlightMessages,
            ["limits.maxInFlightBytes"] = pipeline.Limits.MaxInFlightBytes,
            ["limits.drainTimeout"] = pipeline.Limits.DrainTimeout,
        });
        Assert.That(DocText.Read("config.md"), Does.Contain($"`metrics.port`: {new KawaOptions().Metrics.Port} by default"));
    }

    [Test]
    public void JetStreamSourceTable_Defaults_AreTheOptionsDefaults()
    {
        var source = new NatsJetStreamSourceOptions();
        AssertDefaults("### `nats-jetstream` — durable pull consumer", new Dictionary<string, object?>
        {
            ["servers"] = source.Servers,
            ["deliverPolicy"] = source.DeliverPolicy,
            ["ackWait"] = source.AckWait,
            ["maxAckPending"] = source.MaxAckPending,
            ["prefetch"] = source.Prefetch,
        });
    }

    [Test]
    public void FileSourceTable_Defaults_AreTheOptionsDefaults()
    {
        var file = new FileSourceOptions();
        AssertDefaults("### `file`", new Dictionary<string, object?> { ["mode"] = file.Mode, ["format"] = file.Format });
        Assert.That(DocText.Read("config.md"), Does.Contain($"`format`: `{new StdinSourceOptions().Format}` (default)"));
    }

    [Test]
    public void HandlerTable_Defaults_AreTheOptionsDefaults()
    {
        var handler = new FilterHandlerOptions();
        AssertDefaults("Every handler has:", new Dictionary<string, object?>
        {
            ["parallelism"] = handler.Parallelism,
            ["capacity"] = handler.Capacity,
            ["ordered"] = handler.Ordered,
            ["keyOrdered"] = handler.KeyOrdered,
        });
        Assert.That(Value(DocText.Table("config.md", "Every handler has:")["errorPolicy"]), Is.EqualTo($"`{{ \"type\": \"{handler.ErrorPolicy.Type}\" }}`"));
    }

    [Test]
    public void ErrorPolicyTable_RetryAndNackDefaults_AreTheOptionsDefaults()
    {
        var policy = new ErrorPolicyOptions();
        var table = DocText.Table("config.md", "### `errorPolicy`");

        Assert.That(table["retry"], Does.Contain($"`maxAttempts` ({policy.MaxAttempts},"));
        Assert.That(table["retry"], Does.Contain($"`initialDelay` ({policy.InitialDelay.TotalMilliseconds} ms)"));
        Assert.That(table["retry"], Does.Contain($"`maxDelay` ({policy.MaxDelay.TotalSeconds} s)"));
        Assert.That(table["retry"], Does.Contain($"default `{policy.Then}`"));
        Assert.That(table["nack"], Does.Contain($"`nackDelay` ({policy.NackDelay.TotalSeconds})"));
    }

    [Test]
    public void ParquetTable_Defaults_AreTheOptionsDefaults()
    {
        var parquet = new ParquetDestinationOptions();
        AssertDefaults("### `parquet` — acks at file commit", new Dictionary<string, object?>
        {
            ["codec"] = parquet.Codec,
            ["rollRows"] = parquet.RollRows,
            ["rollBytes"] = parquet.RollBytes,
            ["rollAge"] = parquet.RollAge,
            ["fsync"] = parquet.Fsync,
            ["rowGroupRows"] = parquet.RowGroupRows,
        });
        Assert.That(DocText.Table("config.md", "### `parquet` — acks at file commit")["s3"], Does.Contain($"`forcePathStyle` ({Doc(new S3Options().ForcePathStyle)})"));
        Assert.That(DocText.Read("config.md"), Does.Contain($"`format`: `{new StdoutDestinationOptions().Format}` (the fields as one JSON object per line, default)"));
    }

    [Test]
    public void CliReadmeDefaultsTable_Defaults_AreTheOptionsDefaults()
    {
        var pipeline = new KawaPipelineOptions();
        var source = new NatsJetStreamSourceOptions();
        var parquet = new ParquetDestinationOptions();
        var table = DocText.Table("../Kawa.Dataflow.Cli/README.md", "The defaults are chosen to fit together");
        var code = new Dictionary<string, string>
        {
            ["pipeline.limits.maxInFlightMessages"] = Doc(pipeline.Limits.MaxInFlightMessages),
            ["pipeline.limits.maxInFlightBytes"] = string.Create(CultureInfo.InvariantCulture, $"{pipeline.Limits.MaxInFlightBytes / (1024 * 1024)} MiB"),
            ["pipeline.source.maxAckPending"] = Doc(source.MaxAckPending),
            ["pipeline.source.prefetch"] = Doc(source.Prefetch),
            ["pipeline.source.ackWait"] = string.Create(CultureInfo.InvariantCulture, $"{source.AckWait.TotalMinutes} min"),
            ["pipeline.destination.rollRows"] = Doc(parquet.RollRows),
            ["pipeline.destination.rollAge"] = string.Create(CultureInfo.InvariantCulture, $"{parquet.RollAge.TotalMinutes} min"),
            ["pipeline.destination.rowGroupRows"] = Doc(parquet.RowGroupRows),
        };

        Assert.That(table.Keys, Is.EquivalentTo(code.Keys.Append("setting")), "every row is checked (and the header)");
        foreach (var (key, value) in code)
        {
            Assert.That(Value(table[key]), Is.EqualTo(value), $"Kawa.Dataflow.Cli/README.md: default of {key}");
        }
    }

    [Test]
    public void ParquetDefaultSchema_IsTheValidatorsDefaultColumns()
    {
        var docs = DocText.Read("config.md");
        var sentence = docs[docs.IndexOf("Default schema (no `columns`):", StringComparison.Ordinal)..];
        sentence = sentence[..sentence.IndexOf('.', StringComparison.Ordinal)];
        var documented = Regex.Matches(sentence, "`([a-z_]+)`\\s+\\((?:([a-z]+), )?`(\\$[a-zA-Z]+)`\\)")
            .Select(m => (m.Groups[1].Value, m.Groups[2].Success ? m.Groups[2].Value : "string", m.Groups[3].Value));

        Assert.That(documented, Is.EqualTo(ConfigValidator.DefaultParquetColumns));
    }

    [Test]
    public void MessageProperties_ListedAreExactlyTheCodes()
    {
        var docs = DocText.Read("config.md");
        var sentence = docs[docs.IndexOf("Message properties usable as column sources", StringComparison.Ordinal)..];
        sentence = sentence[..sentence.IndexOf("\n\n", StringComparison.Ordinal)];

        Assert.That(Regex.Matches(sentence, "`(\\$[a-zA-Z]+)`").Select(m => m.Groups[1].Value), Is.EqualTo(Kawa.Dataflow.Cli.Events.MessageProperties.All));
    }

    [Test]
    public void ValuesTable_EveryDurationForm_Parses()
    {
        var cell = DocText.Table("config.md", "## Values")["duration"];
        var examples = Regex.Matches(cell, "`([^`]+)`").Select(m => m.Groups[1].Value)
            .Select(e => e.Replace("hh:mm:ss[.fffffff]", "01:02:03.5", StringComparison.Ordinal).Replace("d.hh:mm:ss", "1.02:03:04", StringComparison.Ordinal))
            .ToList();

        Assert.That(examples, Has.Count.GreaterThanOrEqualTo(7));
        Assert.That(examples.Where(e => !ConfigReader.TryParseDuration(e, out var parsed) || parsed <= TimeSpan.Zero), Is.Empty);
    }
}
