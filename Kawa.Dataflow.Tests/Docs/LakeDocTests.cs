using System.Diagnostics.Metrics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Docs;

/// <summary>docs/lake.md's defaults, limits, failure kinds and instruments against the lake layer.</summary>
public class LakeDocTests
{
    [Test]
    public void StatedDefaultsAndLimits_AreTheCodes()
    {
        var docs = DocText.Flat("lake.md");
        var local = new LocalLakeStorageOptions();
        var s3 = new S3LakeStorageOptions();

        Assert.That(local.Fsync, Is.EqualTo(FsyncMode.Full));
        Assert.That(docs, Does.Contain("`Full` (default: file and directory)"));
        Assert.That(docs, Does.Contain($"(buffered, `BufferSize`, default {local.BufferSize / 1024} KiB)"));
        Assert.That(local.MaxFileAge, Is.EqualTo(s3.MaxFileAge));
        Assert.That(docs, Does.Contain($"**2 × `MaxFileAge`** (default {local.MaxFileAge.TotalHours} hour)"));
        var example = new LakeFileNamer("ingest-1", local.MaxFileAge).Next("snappy");
        Assert.That(docs, Does.Contain(example[example.IndexOf('.', StringComparison.Ordinal)..]), "the example name declares the default MaxFileAge as the namer does");
        Assert.That(docs, Does.Contain($"(`PartSize`, default {s3.PartSize / (1024 * 1024)} MiB, minimum {S3LakeStorageOptions.MinimumPartSize / (1024 * 1024)} MiB"));
        Assert.That(s3.PreventOverwrite, Is.True);
        Assert.That(docs, Does.Contain("With `PreventOverwrite` (default)"));
        Assert.That(s3.UseChunkEncoding, Is.False);
        Assert.That(docs, Does.Contain("(`UseChunkEncoding = false` by default)"));
        Assert.That(docs, Does.Contain($"reduced to `[A-Za-z0-9_-]` ({LakeInstanceId.MaxLength} characters at most)"));
        Assert.That(docs, Does.Contain($"maps `null`/empty to `{PartitionValue.DefaultPartitionName}`"));
        Assert.That(docs, Does.Contain($"exceeds {PartitionValue.MaxEncodedBytes} UTF-8 bytes"));
    }

    [Test]
    public void FailureTable_NamesEveryLakeWriteFailure()
    {
        var table = DocText.Table("lake.md", "| `Failure` |");

        Assert.That(table.Keys, Is.EquivalentTo(Enum.GetNames<LakeWriteFailure>()));
    }

    [Test]
    public void TelemetryTable_ListsEveryLakeInstrument()
    {
        RuntimeHelpers.RunClassConstructor(typeof(LakeTelemetry).TypeHandle);
        var instruments = new List<(string Name, string? Unit)>();
        using (var listener = new MeterListener())
        {
            listener.InstrumentPublished = (instrument, _) =>
            {
                if (instrument.Meter.Name == Kawa.Dataflow.Telemetry.MeterName && instrument.Name.StartsWith("kawa.lake.", StringComparison.Ordinal))
                {
                    instruments.Add((instrument.Name, instrument.Unit));
                }
            };
            listener.Start();
        }

        var table = DocText.Table("lake.md", "| Instrument |");
        var documented = table.Select(r => (r.Key, (string?)r.Value.Split(" | ")[0].Trim('`')));

        Assert.That(DocText.Read("lake.md"), Does.Contain($"On the meter `{Kawa.Dataflow.Telemetry.MeterName}`"));
        Assert.That(documented, Is.EquivalentTo(instruments));
    }

    [Test]
    public void LogsSentence_CoversTheEventIdsTheLakeLogs()
    {
        var ids = typeof(LakeLog).GetMethods(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.Public)
            .Select(m => m.GetCustomAttributes(typeof(Microsoft.Extensions.Logging.LoggerMessageAttribute), false).Cast<Microsoft.Extensions.Logging.LoggerMessageAttribute>().SingleOrDefault())
            .Where(a => a is not null)
            .Select(a => a!.EventId)
            .ToList();
        var range = Regex.Match(DocText.Read("lake.md"), "event ids (\\d+)–(\\d+)");

        Assert.That(range.Success, Is.True);
        Assert.That((ids.Min(), ids.Max()), Is.EqualTo((int.Parse(range.Groups[1].Value, CultureInfo.InvariantCulture), int.Parse(range.Groups[2].Value, CultureInfo.InvariantCulture))));
    }
}
