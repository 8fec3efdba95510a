using System.Globalization;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>A Parquet lake directory as readers see it: DuckDB over <c>**/*.parquet</c>, and the raw file listing.</summary>
internal sealed class Lake(string root)
{
    public string Root { get; } = root;

    private string Scan => $"read_parquet({DuckDb.Lit(Path.Combine(Root, "**", "*.parquet"))}, hive_partitioning = true, filename = true)";

    /// <summary>Files a reader's glob picks up: named <c>*.parquet</c>, no path segment starting with <c>.</c>.</summary>
    public IReadOnlyList<string> VisibleFiles() => [.. AllFiles().Where(f => f.EndsWith(".parquet", StringComparison.Ordinal) && !IsHidden(f))];

    /// <summary>Temporary files of unfinished commits (<c>.&lt;name&gt;.tmp-&lt;instance&gt;-&lt;hex&gt;</c>).</summary>
    public IReadOnlyList<string> TemporaryFiles() => [.. AllFiles().Where(f => Path.GetFileName(f).StartsWith('.') && Path.GetFileName(f).Contains(".tmp-", StringComparison.Ordinal))];

    /// <summary>
    /// Every file that is neither visible nor a writer's instance lock (<c>.kawa-instance-&lt;id&gt;.lock</c>, held by a
    /// running kawa): temporary files and anything else left behind.
    /// </summary>
    public IReadOnlyList<string> OtherFiles() => [.. AllFiles().Except(VisibleFiles()).Where(f => !IsInstanceLock(f))];

    /// <summary>Rows per status code.</summary>
    public async Task<IReadOnlyDictionary<string, long>> RowsPerStatusAsync()
    {
        var result = await QueryAsync($"SELECT CAST(status AS VARCHAR) AS status, count(*) AS n FROM {Scan} GROUP BY status");
        return Enumerable.Range(0, result.Rows.Length).ToDictionary(i => result.Str(i, "status")!, i => result.Long(i, "n"));
    }

    /// <summary>Total rows and the sum of the <c>bytes</c> column.</summary>
    public async Task<(long Rows, long Bytes)> TotalsAsync()
    {
        if (VisibleFiles().Count == 0)
        {
            return (0, 0); // DuckDB refuses a glob that matches nothing
        }

        var result = await QueryAsync($"SELECT count(*) AS n, CAST(coalesce(sum(bytes), 0) AS BIGINT) AS b FROM {Scan}");
        return (result.Long(0, "n"), result.Long(0, "b"));
    }

    /// <summary>Rows per UTC hour of <c>ts</c>, keyed by hours since the Unix epoch (independent of the session time zone).</summary>
    public async Task<IReadOnlyDictionary<long, long>> RowsPerHourAsync()
    {
        var result = await QueryAsync($"SELECT CAST(floor(epoch(ts) / 3600) AS BIGINT) AS h, count(*) AS n FROM {Scan} GROUP BY h");
        return Enumerable.Range(0, result.Rows.Length).ToDictionary(i => result.Long(i, "h"), i => result.Long(i, "n"));
    }

    /// <summary>
    /// Per committed file: its partition directory (relative, <c>/</c>-separated), rows, and the first and last UTC hour
    /// (epoch hours) of its rows' <c>ts</c>.
    /// </summary>
    public async Task<IReadOnlyList<LakeFileStats>> FilesAsync()
    {
        var result = await QueryAsync(
            $"SELECT filename, count(*) AS n, CAST(floor(min(epoch(ts)) / 3600) AS BIGINT) AS first_hour, CAST(floor(max(epoch(ts)) / 3600) AS BIGINT) AS last_hour FROM {Scan} GROUP BY filename");
        return [.. Enumerable.Range(0, result.Rows.Length).Select(i =>
        {
            var file = result.Str(i, "filename")!;
            var partition = Path.GetRelativePath(Root, Path.GetDirectoryName(file)!).Replace('\\', '/');
            return new LakeFileStats(file, partition, result.Long(i, "n"), result.Long(i, "first_hour"), result.Long(i, "last_hour"));
        })];
    }

    /// <summary>Rows per partition directory, e.g. <c>dt=2015-05-17/hour=10</c>.</summary>
    public async Task<IReadOnlyDictionary<string, long>> RowsPerPartitionAsync() =>
        (await FilesAsync()).GroupBy(f => f.Partition).ToDictionary(g => g.Key, g => g.Sum(f => f.Rows));

    /// <summary>How many times each distinct value of <paramref name="expression"/> occurs in the lake.</summary>
    public async Task<IReadOnlyDictionary<string, long>> CountByAsync(string expression)
    {
        var result = await QueryAsync($"SELECT CAST({expression} AS VARCHAR) AS k, count(*) AS n FROM {Scan} GROUP BY k");
        return Enumerable.Range(0, result.Rows.Length).ToDictionary(i => result.Str(i, "k") ?? "<null>", i => result.Long(i, "n"));
    }

    public Task<DuckResult> QueryAsync(string sql) => DuckDb.QueryAsync(TimeSpan.FromSeconds(120), sql);

    /// <summary>The partition <c>dt=yyyy-MM-dd/hour=HH</c> an epoch hour belongs to.</summary>
    public static string PartitionOf(long epochHour)
    {
        var t = DateTimeOffset.UnixEpoch.AddHours(epochHour);
        return string.Create(CultureInfo.InvariantCulture, $"dt={t:yyyy-MM-dd}/hour={t:HH}");
    }

    private static bool IsInstanceLock(string file) =>
        Path.GetFileName(file).StartsWith(".kawa-instance-", StringComparison.Ordinal) && file.EndsWith(".lock", StringComparison.Ordinal);

    private IEnumerable<string> AllFiles() =>
        Directory.Exists(Root) ? Directory.EnumerateFiles(Root, "*", SearchOption.AllDirectories) : [];

    private bool IsHidden(string file) =>
        Path.GetRelativePath(Root, file).Split(Path.DirectorySeparatorChar).Any(segment => segment.StartsWith('.'));
}

/// <summary>One committed lake file as DuckDB reads it.</summary>
internal sealed record LakeFileStats(string File, string Partition, long Rows, long FirstHour, long LastHour);
