using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// What the lake storages report, on a meter named <see cref="Telemetry.MeterName"/> like the core's, so one
/// <c>AddMeter("Kawa.Dataflow")</c> collects both.
/// </summary>
/// <remarks>
/// Instruments: <c>kawa.lake.files.committed</c>, <c>kawa.lake.bytes.committed</c>, <c>kawa.lake.commit.duration</c>
/// (seconds from the commit call to visible and durable: flushes, fsyncs, rename; or the S3 completion),
/// <c>kawa.lake.files.failed</c> (tagged <c>kawa.lake.failure</c>) and <c>kawa.lake.cleanup.removed</c>. Every
/// measurement is tagged <c>kawa.lake.storage</c> (<c>local</c> or <c>s3</c>) and <c>kawa.lake.instance</c>.
/// </remarks>
internal static class LakeTelemetry
{
    public const string StorageTag = "kawa.lake.storage";
    public const string InstanceTag = "kawa.lake.instance";
    public const string FailureTag = "kawa.lake.failure";

    private static readonly Meter Meter = new(Telemetry.MeterName, typeof(LakeTelemetry).Assembly.GetName().Version?.ToString());

    public static readonly Counter<long> FilesCommitted = Meter.CreateCounter<long>("kawa.lake.files.committed", "{file}", "Lake files committed (durable and visible).");

    public static readonly Counter<long> BytesCommitted = Meter.CreateCounter<long>("kawa.lake.bytes.committed", "By", "Bytes in committed lake files.");

    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram<double>("kawa.lake.commit.duration", "s", "Time from the commit call until the file is durable and visible.");

    public static readonly Counter<long> FilesFailed = Meter.CreateCounter<long>("kawa.lake.files.failed", "{file}", "Lake files whose write or commit failed (removed, not acked).");

    public static readonly Counter<long> CleanupRemoved = Meter.CreateCounter<long>("kawa.lake.cleanup.removed", "{file}", "Leftovers of crashed writers removed at startup.");

    public static void Committed(string storage, string instance, long bytes, TimeSpan elapsed)
    {
        var tags = new TagList { { StorageTag, storage }, { InstanceTag, instance } };
        FilesCommitted.Add(1, tags);
        BytesCommitted.Add(bytes, tags);
        CommitDuration.Record(elapsed.TotalSeconds, tags);
    }

    public static void Failed(string storage, string instance, LakeWriteFailure failure) =>
        FilesFailed.Add(1, new TagList { { StorageTag, storage }, { InstanceTag, instance }, { FailureTag, failure.ToString() } });

    public static void Cleaned(string storage, string instance, int removed)
    {
        if (removed > 0)
        {
            CleanupRemoved.Add(removed, new TagList { { StorageTag, storage }, { InstanceTag, instance } });
        }
    }
}
