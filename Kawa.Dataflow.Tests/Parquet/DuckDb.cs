using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Parquet;

/// <summary>Runs SQL in DuckDB (through duckdb/query.js under node) and returns the exactly-encoded JSON result.</summary>
internal static class DuckDb
{
    private static readonly Lazy<string> RepoRoot = new(FindRepoRoot);

    public static string Root => RepoRoot.Value;

    /// <summary>A file under ../shared/data relative to the repository root (for worktrees, the nearest ancestor holding shared/data).</summary>
    public static string SharedData(string relative)
    {
        var dir = new DirectoryInfo(Root).Parent;
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "shared", "data")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? Path.Combine(Root, ".."), "shared", "data", relative);
    }

    /// <summary>Runs the statements in order; returns the last one's result.</summary>
    public static DuckResult Query(params string[] statements) => QueryAsync(TimeSpan.FromSeconds(120), statements).GetAwaiter().GetResult();

    public static async Task<DuckResult> QueryAsync(TimeSpan timeout, params string[] statements)
    {
        var psi = new ProcessStartInfo("node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(Path.Combine(Root, "Kawa.Dataflow.Tests", "Parquet", "duckdb", "query.js"));
        foreach (var s in statements)
        {
            psi.ArgumentList.Add(s);
        }

        psi.Environment["NODE_PATH"] = Path.Combine(Root, "tools", "node", "node_modules");
        var (exitCode, output, error) = await ChildProcess.RunAsync(psi, timeout, _ => $"DuckDB query timed out after {timeout}: {string.Join("; ", statements)}");
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"DuckDB failed (exit {exitCode}): {error}\nSQL: {string.Join("; ", statements)}");
        }

        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        var columns = root.GetProperty("columns").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var types = root.GetProperty("types").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var rows = root.GetProperty("rows").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.Clone()).ToArray()).ToArray();
        return new DuckResult(columns, types, rows);
    }

    /// <summary>SQL string literal for a file path.</summary>
    public static string Lit(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("Kawa.Dataflow.sln not found above " + AppContext.BaseDirectory);
    }
}

internal sealed record DuckResult(string[] Columns, string[] Types, JsonElement[][] Rows)
{
    public JsonElement Cell(int row, string column) => Rows[row][Array.IndexOf(Columns, column)];

    public string? Str(int row, string column)
    {
        var c = Cell(row, column);
        return c.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => c.GetString(),
            _ => c.GetRawText(),
        };
    }

    public long Long(int row, string column) => long.Parse(Str(row, column)!, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The exact double of a DOUBLE/FLOAT cell encoded as "f64:&lt;hex bits&gt;".</summary>
    public double? Double(int row, string column)
    {
        var s = Str(row, column);
        return s is null ? null : BitConverter.Int64BitsToDouble(Convert.ToInt64(s[4..], 16));
    }

    public static string Bits(double d) => "f64:" + BitConverter.DoubleToInt64Bits(d).ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
}
