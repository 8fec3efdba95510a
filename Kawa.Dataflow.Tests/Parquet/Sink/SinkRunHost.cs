using System.Text.Json;
using Kawa.Dataflow.Tests.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>The row the fault host's <c>sink-run</c> writes (same names as its <c>PayloadRow</c>).</summary>
public sealed class PayloadRow
{
    public long Id { get; set; }

    public byte[] Data { get; set; } = [];

    /// <summary>Row <paramref name="id"/>'s payload, computed as the fault host does (seeded, barely compressible).</summary>
    public static byte[] Payload(long id, int size)
    {
        var bytes = new byte[size];
        new Random((int)id).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>One failure the <c>sink-run</c> host saw: a flush (through the sink's retry check) or the drain.</summary>
internal sealed record SinkRunFailure(string? File, string Failure, string Message);

/// <summary>
/// The fault host's <c>sink-run</c> command: a <c>ParquetDestination</c> in a child process that appends every ack
/// outcome (<c>ack N</c> / <c>nack N</c>) to a log as it happens, so what was acked is known even after a SIGKILL.
/// </summary>
internal sealed class SinkRunHost : IDisposable
{
    private SinkRunHost(string ackLog, FaultHostProcess process)
    {
        AckLog = ackLog;
        Process = process;
    }

    public string AckLog { get; }

    public FaultHostProcess Process { get; }

    /// <summary>
    /// Starts <c>sink-run</c> with <paramref name="spec"/> (the host's <c>SinkRunSpec</c> fields: Root or S3Url/Bucket/PartSize,
    /// Instance, Rows, PayloadBytes, BatchSize, FileMaxRows, RowGroupMaxRows, FaultOccurrence); the ack log is made here,
    /// writable by anyone (the host may run as nobody).
    /// </summary>
    public static SinkRunHost Start(Dictionary<string, object> spec, string? fault = null, string[]? wrapper = null, bool resumable = false)
    {
        var ackLog = Path.Combine(Path.GetTempPath(), "kawa-acks-" + Guid.NewGuid().ToString("N")[..12]);
        File.WriteAllText(ackLog, "");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(ackLog, (UnixFileMode)0b110_110_110);
        }

        spec["AckLog"] = ackLog;
        var process = FaultHostProcess.Start(["sink-run", JsonSerializer.Serialize(spec)], fault, wrapper,
            resumable ? new Dictionary<string, string> { ["KAWA_FAULT_RESUME"] = "stdin" } : null);
        return new SinkRunHost(ackLog, process);
    }

    /// <summary>The ids acked and negatively acked so far, each sorted.</summary>
    public (long[] Acked, long[] Nacked) Outcomes()
    {
        var lines = File.ReadAllLines(AckLog).Select(l => l.Split(' ')).ToList();
        long[] Of(string kind) => lines.Where(l => l[0] == kind).Select(l => long.Parse(l[1], System.Globalization.CultureInfo.InvariantCulture)).Order().ToArray();
        return (Of("ack"), Of("nack"));
    }

    /// <summary>The failures listed in the host's result.</summary>
    public static SinkRunFailure[] Failures(FaultHostResult result)
    {
        using var json = JsonDocument.Parse(result.Json);
        return json.RootElement.GetProperty("failures").EnumerateArray()
            .Select(f => new SinkRunFailure(f.GetProperty("file").GetString(), f.GetProperty("failure").GetString()!, f.GetProperty("message").GetString()!))
            .ToArray();
    }

    public static long[] Range(long first, long count) => Enumerable.Range((int)first, (int)count).Select(i => (long)i).ToArray();

    /// <summary>What DuckDB sees through the glob <c>root/**/*.parquet</c>: the sorted ids (hidden temporaries never match).</summary>
    public static long[] VisibleIds(string root)
    {
        var result = DuckDb.Query($"SELECT Id FROM read_parquet({DuckDb.Lit(root + "/**/*.parquet")}) ORDER BY Id");
        return Enumerable.Range(0, result.Rows.Length).Select(i => result.Long(i, "Id")).ToArray();
    }

    public void Dispose()
    {
        Process.Dispose();
        File.Delete(AckLog);
    }
}
