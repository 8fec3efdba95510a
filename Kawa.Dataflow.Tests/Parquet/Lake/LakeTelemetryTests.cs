using System.Diagnostics.Metrics;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class LakeTelemetryTests
{
    /// <summary>Collects the lake instruments' measurements of one instance id (other tests may write meanwhile).</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly string _instance;

        public Recorder(string instance)
        {
            _instance = instance;
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Telemetry.MeterName && instrument.Name.StartsWith("kawa.lake.", StringComparison.Ordinal))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Record(instrument, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Record(instrument, value, tags));
            _listener.Start();
        }

        public List<(string Name, double Value, Dictionary<string, object?> Tags)> Measurements { get; } = [];

        private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var dictionary = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                dictionary[tag.Key] = tag.Value;
            }
            if (Equals(dictionary.GetValueOrDefault("kawa.lake.instance"), _instance))
            {
                lock (Measurements)
                {
                    Measurements.Add((instrument.Name, value, dictionary));
                }
            }
        }

        public double Sum(string name) => Measurements.Where(m => m.Name == name).Sum(m => m.Value);

        public void Dispose() => _listener.Dispose();
    }

    [Test]
    public async Task CommitAndFailure_LocalStorage_CountedWithStorageInstanceAndFailureTags()
    {
        using var root = new TempDirectory();
        var instance = "telemetry-" + Guid.NewGuid().ToString("N")[..8];
        using var recorder = new Recorder(instance);
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = root.Path, InstanceId = instance });

        await using (var file = await storage.CreateAsync("a.parquet"))
        {
            await file.Stream.WriteAsync(new byte[1234]);
            await file.CommitAsync();
        }
        await using (var duplicate = await storage.CreateAsync("a.parquet"))
        {
            await Assert.ThrowsAsync<LakeWriteException>(async () => await duplicate.CommitAsync());
        }

        Assert.Multiple(() =>
        {
            Assert.That(recorder.Sum("kawa.lake.files.committed"), Is.EqualTo(1));
            Assert.That(recorder.Sum("kawa.lake.bytes.committed"), Is.EqualTo(1234));
            Assert.That(recorder.Measurements.Count(m => m.Name == "kawa.lake.commit.duration"), Is.EqualTo(1));
            Assert.That(recorder.Measurements.Single(m => m.Name == "kawa.lake.files.failed").Tags["kawa.lake.failure"], Is.EqualTo("AlreadyExists"));
            Assert.That(recorder.Measurements.Select(m => m.Tags["kawa.lake.storage"]), Is.All.EqualTo("local"));
        });
    }
}
