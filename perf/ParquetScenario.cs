using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Perf;

/// <summary>
/// `parquet --rows N --codec snappy --out PATH`: writes a 10-column log-like dataset with ParquetWriter and compares
/// with DuckDB (threads=1) writing the same table with the same codec; checks both footers and table equality.
/// </summary>
internal static class ParquetScenario
{
    public sealed record LogRow(
        DateTime Timestamp, string Host, string Method, string Path, int Status, long Bytes, double Latency, bool Cached,
        string? UserAgent, string RequestId);

    public static async Task<int> RunAsync(string[] args)
    {
        int rows = 1_000_000;
        string codec = "snappy";
        string? outPath = null;
        int runs = 5;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--rows": rows = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--codec": codec = args[++i].ToLowerInvariant(); break;
                case "--out": outPath = args[++i]; break;
                case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    await Console.Error.WriteLineAsync($"unknown option {args[i]}; usage: parquet --rows N --codec snappy|gzip|brotli|uncompressed --out PATH [--runs 5]");
                    return 2;
            }
        }

        var compression = codec switch
        {
            "snappy" => ParquetCompression.Snappy,
            "gzip" => ParquetCompression.Gzip,
            "brotli" => ParquetCompression.Brotli,
            "uncompressed" => ParquetCompression.Uncompressed,
            _ => throw new ArgumentException($"codec {codec} is not supported (snappy, gzip, brotli, uncompressed; ZSTD is not available)"),
        };
        outPath = Path.GetFullPath(outPath ?? Path.Combine(Path.GetTempPath(), $"kawa-perf-{rows}.parquet"));
        Directory.CreateDirectory(Path.GetDirectoryName(outPath)!);
        string duckPath = Path.ChangeExtension(outPath, ".duckdb.parquet");
        string root = FindRoot();

        Console.WriteLine($"generating {rows:N0} rows");
        var data = Generate(rows);
        var options = new ParquetWriterOptions { Compression = compression };

        // Warm-up: JIT tiers, pooled buffers at full row-group size, and DuckDB's own warm-up inside copy.js.
        await WriteOursAsync(data, outPath, options);

        var ours = new List<double>();
        var duck = new List<double>();
        var oursCpu = new List<double>();
        var duckCpu = new List<double>();
        var allocs = new List<double>();
        for (int r = 0; r < runs; r++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            await WriteOursAsync(data, outPath, options);
            sw.Stop();
            oursCpu.Add(rows / (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - before;
            ours.Add(rows / sw.Elapsed.TotalSeconds);
            allocs.Add((double)allocated / rows);

            var (seconds, cpuSeconds) = await DuckCopyAsync(root, outPath, duckPath, codec);
            duck.Add(rows / seconds);
            duckCpu.Add(rows / cpuSeconds);
            Console.WriteLine($"run {r + 1}: ours {ours[^1]:N0} rows/s wall, {oursCpu[^1]:N0} rows/cpu-s ({allocs[^1]:F1} B/row alloc); duckdb {duck[^1]:N0} rows/s wall, {duckCpu[^1]:N0} rows/cpu-s");
        }

        // Allocations per row independent of row count: the same write of a tenth of the rows, so that
        // (alloc(N) - alloc(N/10)) / (0.9 N) is what each further row costs; fixed costs (writer, footer) cancel out.
        var tenthData = data.GetRange(0, Math.Max(1, rows / 10));
        string tenthPath = outPath + ".tenth";
        var tenthAllocs = new List<double>();
        for (int r = 0; r < 3; r++)
        {
            long before = GC.GetTotalAllocatedBytes(precise: true);
            await WriteOursAsync(tenthData, tenthPath, options);
            tenthAllocs.Add(GC.GetTotalAllocatedBytes(precise: true) - before);
        }

        File.Delete(tenthPath);
        double fullAlloc = Median(allocs) * rows, tenthAlloc = Median(tenthAllocs);
        double marginalAllocPerRow = rows > tenthData.Count ? (fullAlloc - tenthAlloc) / (rows - tenthData.Count) : 0;

        // Footers show the requested codec.
        string ourCodec = await FooterCodecAsync(outPath);
        string duckCodec = await FooterCodecAsync(duckPath);
        if (!string.Equals(ourCodec, codec, StringComparison.OrdinalIgnoreCase) || !string.Equals(duckCodec, codec, StringComparison.OrdinalIgnoreCase))
        {
            await Console.Error.WriteLineAsync($"codec mismatch: ours {ourCodec}, duckdb {duckCodec}, requested {codec}");
            return 1;
        }

        // Both tables equal: EXCEPT ALL both ways empty.
        long diff = await DiffAsync(root, outPath, duckPath);
        if (diff != 0)
        {
            await Console.Error.WriteLineAsync($"tables differ: {diff} rows in EXCEPT ALL");
            return 1;
        }

        double oursMedian = Median(ours), duckMedian = Median(duck);
        long bytes = new FileInfo(outPath).Length, duckBytes = new FileInfo(duckPath).Length;
        string note = "rowsPerSec/duckdbRowsPerSec are wall-clock medians; cpu* are per CPU-second of each process (the host is shared, see loadAverage); " +
                      "our writer runs with its default settings (writerThreads = ParquetWriterOptions.MaxDegreeOfParallelism default = processor count, encoding column chunks in parallel), DuckDB with threads=1 as the issue specifies";
        var result = new
        {
            rows,
            codec,
            rowsPerSec = Math.Round(oursMedian),
            duckdbRowsPerSec = Math.Round(duckMedian),
            ratio = Math.Round(oursMedian / duckMedian, 3),
            bytes,
            duckdbBytes = duckBytes,
            sizeRatio = Math.Round((double)bytes / duckBytes, 3),
            allocBytesPerRow = Math.Round(Median(allocs), 1),
            allocBytesPerRowAtTenth = Math.Round(tenthAlloc / tenthData.Count, 1),
            marginalAllocBytesPerRow = Math.Round(marginalAllocPerRow, 2),
            cpuRowsPerSec = Math.Round(Median(oursCpu)),
            duckdbCpuRowsPerSec = Math.Round(Median(duckCpu)),
            cpuRatio = Math.Round(Median(oursCpu) / Median(duckCpu), 3),
            writerThreads = options.MaxDegreeOfParallelism,
            duckdbThreads = 1,
            rowGroupRows = options.RowGroupMaxRows,
            loadAverage = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a",
            runs,
            footerCodec = ourCodec,
            duckdbFooterCodec = duckCodec,
            exceptAllRows = diff,
            note,
        };
        Console.WriteLine(JsonSerializer.Serialize(result));
        return 0;
    }

    private static async Task WriteOursAsync(List<LogRow> data, string path, ParquetWriterOptions options)
    {
        await using var stream = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20, useAsync: false);
        await using var writer = new ParquetWriter<LogRow>(stream, options, leaveOpen: true);
        const int Batch = 10_000;
        var slice = new ListSlice<LogRow>(data);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < data.Count; i += Batch)
        {
            slice.Set(i, Math.Min(Batch, data.Count - i));
            await writer.WriteAsync(slice);
        }

        var shred = sw.Elapsed;
        await writer.CompleteAsync();
        if (Environment.GetEnvironmentVariable("KAWA_PERF_SPLIT") == "1")
        {
            Console.WriteLine($"  shred {shred.TotalMilliseconds:F0} ms, encode+write {(sw.Elapsed - shred).TotalMilliseconds:F0} ms");
        }
    }

    /// <summary>A reusable window over a list, so batching allocates nothing per batch.</summary>
    private sealed class ListSlice<T>(List<T> list) : IReadOnlyList<T>
    {
        private int _start;
        private int _count;

        public void Set(int start, int count)
        {
            _start = start;
            _count = count;
        }

        public T this[int index] => list[_start + index];

        public int Count => _count;

        public IEnumerator<T> GetEnumerator()
        {
            for (int i = 0; i < _count; i++) yield return list[_start + i];
        }

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    private static List<LogRow> Generate(int rows)
    {
        var random = new Random(7);
        var hosts = Enumerable.Range(0, 50).Select(i => $"web-{i:D2}.prod.example.com").ToArray();
        string[] methods = ["GET", "POST", "PUT", "DELETE"];
        int[] statuses = [200, 200, 200, 200, 200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 500, 502, 503];
        string[] agents =
        [
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
            "curl/8.4.0", "Googlebot/2.1 (+http://www.google.com/bot.html)", "python-requests/2.31.0",
            "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ];
        var start = new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var list = new List<LogRow>(rows);
        Span<byte> id = stackalloc byte[16];
        for (int i = 0; i < rows; i++)
        {
            random.NextBytes(id);
            list.Add(new LogRow(
                start.AddTicks(i * 1_234L + random.Next(1000)),
                hosts[random.Next(hosts.Length)],
                methods[random.Next(10) switch { < 6 => 0, < 8 => 1, < 9 => 2, _ => 3 }],
                $"/api/v{random.Next(1, 4)}/items/{random.Next(200_000)}?page={random.Next(20)}",
                statuses[random.Next(statuses.Length)],
                random.NextInt64(0, 5_000_000),
                Math.Round(random.NextDouble() * 250, 3),
                random.Next(4) == 0,
                random.Next(5) == 0 ? null : agents[random.Next(agents.Length)],
                Convert.ToHexString(id).ToLowerInvariant()));
        }

        return list;
    }

    private static async Task<(double Seconds, double CpuSeconds)> DuckCopyAsync(string root, string input, string output, string codec)
    {
        var (stdout, _) = await NodeAsync(root, Path.Combine(root, "perf", "duckdb", "copy.js"), [input, output, codec]);
        using var doc = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]);
        return (doc.RootElement.GetProperty("seconds").GetDouble(), doc.RootElement.GetProperty("cpuSeconds").GetDouble());
    }

    private static async Task<long> DiffAsync(string root, string ours, string duck)
    {
        string q(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";
        string sql = $"SELECT (SELECT count(*) FROM (SELECT * FROM read_parquet({q(ours)}) EXCEPT ALL SELECT * FROM read_parquet({q(duck)}))) + " +
                     $"(SELECT count(*) FROM (SELECT * FROM read_parquet({q(duck)}) EXCEPT ALL SELECT * FROM read_parquet({q(ours)}))) AS d, " +
                     $"(SELECT count(*) FROM read_parquet({q(ours)})) AS a, (SELECT count(*) FROM read_parquet({q(duck)})) AS b";
        var (stdout, _) = await NodeAsync(root, Path.Combine(root, "Kawa.Dataflow.Tests", "Parquet", "duckdb", "query.js"), [sql]);
        using var doc = JsonDocument.Parse(stdout);
        var row = doc.RootElement.GetProperty("rows")[0];
        long d = long.Parse(row[0].GetString()!, CultureInfo.InvariantCulture);
        long a = long.Parse(row[1].GetString()!, CultureInfo.InvariantCulture);
        long b = long.Parse(row[2].GetString()!, CultureInfo.InvariantCulture);
        return a == b ? d : Math.Max(1, d);
    }

    private static async Task<string> FooterCodecAsync(string path)
    {
        await using var reader = await ParquetReader.OpenAsync(path);
        var codecs = reader.RowGroups.SelectMany(g => g.Columns).Select(c => c.Codec).Distinct().ToList();
        return codecs.Count == 1 ? codecs[0] : string.Join("+", codecs);
    }

    private static async Task<(string Stdout, string Stderr)> NodeAsync(string root, string script, string[] args)
    {
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NODE_PATH"] = Path.Combine(root, "tools", "node", "node_modules");
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"node {Path.GetFileName(script)} failed: {await se}");
        }

        return (await so, await se);
    }

    private static double Median(List<double> values)
    {
        var s = values.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[(s.Count / 2) - 1] + s[s.Count / 2]) / 2;
    }

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }
}
