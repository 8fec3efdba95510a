using System.Globalization;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Parquet.Reading;

namespace Kawa.Dataflow.Cli.Inspect;

/// <summary>
/// <c>kawa inspect PATH [--json] [--rows N] [--top COLUMN]</c>: the schema, row count, row groups, size, codec and first
/// rows of a Parquet file, or of every <c>*.parquet</c> file under a directory (a lake: also rows per partition), read
/// with the project's own <see cref="ParquetReader"/>.
/// </summary>
/// <remarks>Files still being written (hidden temporary names, starting with <c>.</c> or <c>_</c>) are skipped, as query
/// engines skip them. Exit codes: 0; 3 when the path does not exist; 1 when a file cannot be read as Parquet (named).</remarks>
internal static class InspectCommand
{
    /// <summary>Runs the command.</summary>
    public static async Task<int> RunAsync(string path, bool json, int rows, string? top, TextWriter stdout, TextWriter stderr)
    {
        var full = Path.GetFullPath(path);
        string[] files;
        string root;
        if (File.Exists(full))
        {
            files = [full];
            root = Path.GetDirectoryName(full)!;
        }
        else if (Directory.Exists(full))
        {
            root = full;
            files = Directory.EnumerateFiles(full, "*.parquet", SearchOption.AllDirectories)
                .Where(f => !Path.GetRelativePath(full, f).Split(Path.DirectorySeparatorChar).Any(part => part.StartsWith('.') || part.StartsWith('_')))
                .Order(StringComparer.Ordinal)
                .ToArray();
        }
        else
        {
            stderr.WriteLine($"kawa inspect: '{path}' does not exist (give a .parquet file or a directory of them).");
            return ExitCodes.ConfigInvalid;
        }

        var reports = new List<FileReport>();
        foreach (var file in files)
        {
            try
            {
                reports.Add(await ReadAsync(file, root, rows, top).ConfigureAwait(false));
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException or NotSupportedException or FormatException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"kawa inspect: {file}: not a readable Parquet file: {ex.Message}");
                return ExitCodes.RuntimeFailure;
            }
        }

        if (json)
        {
            WriteJson(stdout, full, reports, top);
        }
        else
        {
            WriteText(stdout, full, reports, top, files.Length == 1 && File.Exists(full));
        }

        return ExitCodes.Ok;
    }

    private static async Task<FileReport> ReadAsync(string file, string root, int rows, string? top)
    {
        var reader = await ParquetReader.OpenAsync(file).ConfigureAwait(false);
        await using (reader.ConfigureAwait(false))
        {
            var columns = reader.Schema.Fields.Select(f => f.Name).ToArray();
            var topIndex = top is null ? -1 : Array.IndexOf(columns, top);
            var first = new List<object?[]>();
            var counts = new Dictionary<string, long>(StringComparer.Ordinal);
            if (rows > 0 || topIndex >= 0)
            {
                await foreach (var row in reader.ReadRowsAsync().ConfigureAwait(false))
                {
                    if (first.Count < rows)
                    {
                        first.Add(row);
                    }
                    else if (topIndex < 0)
                    {
                        break;
                    }

                    if (topIndex >= 0)
                    {
                        var key = Format(row[topIndex]);
                        counts[key] = counts.GetValueOrDefault(key) + 1;
                    }
                }
            }

            var relative = Path.GetRelativePath(root, file);
            var partition = Path.GetDirectoryName(relative) is { Length: > 0 } dir ? dir.Replace('\\', '/') : ".";
            return new FileReport(
                relative.Replace('\\', '/'),
                partition,
                new FileInfo(file).Length,
                reader.RowCount,
                reader.RowGroups.Select(g => (g.RowCount, g.Columns.Sum(c => c.CompressedSize))).ToArray(),
                reader.RowGroups.SelectMany(g => g.Columns).Select(c => c.Codec).Distinct().Order(StringComparer.Ordinal).ToArray(),
                reader.Schema.Fields.Select(f => f.ToString()).ToArray(),
                columns,
                first,
                topIndex >= 0 ? counts : null,
                reader.CreatedBy);
        }
    }

    private static void WriteText(TextWriter output, string path, List<FileReport> reports, string? top, bool single)
    {
        foreach (var report in reports)
        {
            output.WriteLine($"{report.Path}: {report.RowCount:N0} rows, {report.RowGroups.Length} row group(s), {Size(report.Size)}, codec {string.Join('/', report.Codecs.DefaultIfEmpty("-"))}{(report.CreatedBy is null ? string.Empty : $", created by {report.CreatedBy}")}");
            if (single || reports.IndexOf(report) == 0)
            {
                output.WriteLine("  schema:");
                foreach (var field in report.Schema)
                {
                    output.WriteLine($"    {field}");
                }
            }

            for (var i = 0; i < report.RowGroups.Length; i++)
            {
                output.WriteLine($"  row group {i}: {report.RowGroups[i].Rows:N0} rows, {Size(report.RowGroups[i].Bytes)} compressed");
            }

            if (report.FirstRows.Count > 0)
            {
                WriteTable(output, report.Columns, report.FirstRows);
            }
        }

        if (!single)
        {
            output.WriteLine($"{path}: {reports.Count} file(s), {reports.Sum(r => r.RowCount):N0} rows, {Size(reports.Sum(r => r.Size))}");
            output.WriteLine("  rows per partition:");
            foreach (var partition in reports.GroupBy(r => r.Partition).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                output.WriteLine($"    {partition.Key,-40} {partition.Sum(r => r.RowCount),12:N0} rows in {partition.Count()} file(s)");
            }
        }

        if (top is not null)
        {
            var counts = Top(reports);
            output.WriteLine(counts is null ? $"  column '{top}' not found in any file" : $"  top values of '{top}':");
            foreach (var (value, count) in counts ?? [])
            {
                output.WriteLine($"    {value,-20} {count,12:N0}");
            }
        }
    }

    private static void WriteTable(TextWriter output, string[] columns, List<object?[]> rows)
    {
        var cells = rows.Select(r => r.Select(v => Clip(Format(v))).ToArray()).ToList();
        var widths = columns.Select((c, i) => Math.Max(c.Length, cells.Count == 0 ? 0 : cells.Max(r => r[i].Length))).ToArray();
        output.WriteLine("  " + string.Join(" | ", columns.Select((c, i) => c.PadRight(widths[i]))));
        output.WriteLine("  " + string.Join("-+-", widths.Select(w => new string('-', w))));
        foreach (var row in cells)
        {
            output.WriteLine("  " + string.Join(" | ", row.Select((c, i) => c.PadRight(widths[i]))));
        }
    }

    private static void WriteJson(TextWriter output, string path, List<FileReport> reports, string? top)
    {
        var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            writer.WriteString("path", path);
            writer.WriteNumber("files", reports.Count);
            writer.WriteNumber("rows", reports.Sum(r => r.RowCount));
            writer.WriteNumber("bytes", reports.Sum(r => r.Size));
            writer.WriteStartObject("partitions");
            foreach (var partition in reports.GroupBy(r => r.Partition).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                writer.WriteNumber(partition.Key, partition.Sum(r => r.RowCount));
            }

            writer.WriteEndObject();
            if (top is not null)
            {
                writer.WriteStartObject("top");
                foreach (var (value, count) in Top(reports) ?? [])
                {
                    writer.WriteNumber(value, count);
                }

                writer.WriteEndObject();
            }

            writer.WriteStartArray("fileDetails");
            foreach (var report in reports)
            {
                writer.WriteStartObject();
                writer.WriteString("path", report.Path);
                writer.WriteString("partition", report.Partition);
                writer.WriteNumber("bytes", report.Size);
                writer.WriteNumber("rows", report.RowCount);
                writer.WriteString("createdBy", report.CreatedBy);
                writer.WriteStartArray("codecs");
                foreach (var codec in report.Codecs)
                {
                    writer.WriteStringValue(codec);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("schema");
                foreach (var field in report.Schema)
                {
                    writer.WriteStringValue(field);
                }

                writer.WriteEndArray();
                writer.WriteStartArray("rowGroups");
                foreach (var (rows, bytes) in report.RowGroups)
                {
                    writer.WriteStartObject();
                    writer.WriteNumber("rows", rows);
                    writer.WriteNumber("compressedBytes", bytes);
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteStartArray("firstRows");
                foreach (var row in report.FirstRows)
                {
                    writer.WriteStartObject();
                    for (var i = 0; i < report.Columns.Length; i++)
                    {
                        WriteValue(writer, report.Columns[i], row[i]);
                    }

                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteValue(Utf8JsonWriter writer, string name, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNull(name);
                break;
            case bool b:
                writer.WriteBoolean(name, b);
                break;
            case ulong u:
                writer.WriteNumber(name, u);
                break;
            case long or int or short or sbyte or byte or ushort or uint:
                writer.WriteNumber(name, Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case double d when double.IsFinite(d):
                writer.WriteNumber(name, d);
                break;
            case float f when float.IsFinite(f):
                writer.WriteNumber(name, f);
                break;
            case decimal m:
                writer.WriteNumber(name, m);
                break;
            default:
                writer.WriteString(name, Format(value));
                break;
        }
    }

    private static List<(string Value, long Count)>? Top(List<FileReport> reports)
    {
        var withTop = reports.Where(r => r.TopCounts is not null).ToList();
        if (withTop.Count == 0)
        {
            return null;
        }

        return withTop.SelectMany(r => r.TopCounts!)
            .GroupBy(kv => kv.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, g.Sum(kv => kv.Value)))
            .OrderByDescending(x => x.Item2).ThenBy(x => x.Key, StringComparer.Ordinal)
            .Take(10)
            .ToList();
    }

    /// <summary>A value as text: timestamps ISO 8601 UTC, bytes as hex (first 32), lists and maps JSON-like.</summary>
    internal static string Format(object? value) => value switch
    {
        null => "null",
        DateTime dt => dt.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        DateTimeOffset dto => dto.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        byte[] bytes => "0x" + Convert.ToHexString(bytes, 0, Math.Min(bytes.Length, 32)) + (bytes.Length > 32 ? "…" : string.Empty),
        string s => s,
        System.Collections.IDictionary map => "{" + string.Join(", ", map.Keys.Cast<object>().Select(k => $"{Format(k)}: {Format(map[k])}")) + "}",
        System.Collections.IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Format)) + "]",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? string.Empty,
    };

    private static string Clip(string text) => text.Length <= 40 ? text.ReplaceLineEndings(" ") : text[..39].ReplaceLineEndings(" ") + "…";

    private static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F1} MiB"),
    };

    private sealed record FileReport(
        string Path,
        string Partition,
        long Size,
        long RowCount,
        (long Rows, long Bytes)[] RowGroups,
        string[] Codecs,
        string[] Schema,
        string[] Columns,
        List<object?[]> FirstRows,
        Dictionary<string, long>? TopCounts,
        string? CreatedBy);
}
