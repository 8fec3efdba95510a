using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Kawa.Dataflow.Parquet.Reading;

namespace Kawa.Dataflow.Tests.Parquet.Reading;

/// <summary>Files written by DuckDB (dictionary pages, its encodings, v1 and v2 pages) read by our reader.</summary>
public class DuckDbWrittenFilesTests
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private const string Source = """
        SELECT i AS id,
          CASE WHEN i % 7 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
          (i % 256 - 128)::TINYINT AS i8, (i * 37 % 65536 - 32768)::SMALLINT AS i16, (i * 7919 - 20000)::INTEGER AS i32,
          CASE i WHEN 0 THEN -9223372036854775808 WHEN 1 THEN 9223372036854775807 ELSE i * 1000003 END::BIGINT AS i64,
          (i % 256)::UTINYINT AS u8, (i * 13 % 65536)::USMALLINT AS u16,
          CASE WHEN i = 1 THEN 4294967295 ELSE i * 3 END::UINTEGER AS u32,
          CASE WHEN i = 1 THEN 18446744073709551615 ELSE i * 5 END::UBIGINT AS u64,
          CASE i % 5 WHEN 0 THEN 'NaN'::FLOAT WHEN 1 THEN -0.0::FLOAT ELSE (i / 3.0)::FLOAT END AS f32,
          CASE i % 6 WHEN 0 THEN 'NaN'::DOUBLE WHEN 1 THEN '-Infinity'::DOUBLE WHEN 2 THEN 'Infinity'::DOUBLE WHEN 3 THEN -0.0 ELSE i / 7.0 END AS f64,
          (i * 1.5 - 100)::DECIMAL(18,3) AS d18, CASE WHEN i % 3 = 0 THEN NULL ELSE (i * 12345.678901 - 5)::DECIMAL(38,10) END AS d38,
          (i % 4)::DECIMAL(4,1) AS d4,
          CASE WHEN i % 5 = 0 THEN NULL WHEN i % 5 = 1 THEN '' ELSE 'str-' || (i % 50) || '-ü🎉' END AS s,
          ('blob' || i)::BLOB AS bl,
          CASE WHEN i % 4 = 0 THEN NULL ELSE uuid_from_int(i) END AS u,
          TIMESTAMP '1969-12-31 23:59:59.999999' + INTERVAL (i) SECOND AS ts,
          TIMESTAMPTZ '2024-03-01 12:00:00+00' + INTERVAL (i) MINUTE AS tstz,
          DATE '1900-01-01' + (i * 11)::INTEGER AS dt,
          TIME '00:00:00' + INTERVAL (i * 17) SECOND AS tm,
          CASE WHEN i % 6 = 0 THEN NULL WHEN i % 6 = 1 THEN [] ELSE [i, NULL, i + 1] END AS li,
          CASE WHEN i % 5 = 0 THEN NULL ELSE {'n': i, 'name': 'x' || i} END AS st,
          CASE WHEN i % 4 = 0 THEN NULL WHEN i % 4 = 1 THEN MAP {} ELSE MAP {'k' || i: i, 'z': NULL} END::MAP(VARCHAR, INTEGER) AS mp
        FROM range(0, 3000) t(i)
        """;

    // uuid_from_int is a macro defined before the source query runs.
    private const string Macro = "CREATE MACRO uuid_from_int(i) AS (printf('%08x-0000-4000-8000-%012x', i, i * 977))::UUID";

    private static readonly string[] ScalarColumns = ["id", "b", "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "s", "bl", "u", "ts", "tstz", "dt", "tm"];

    [TestCase("snappy", "V1")]
    [TestCase("uncompressed", "V1")]
    [TestCase("gzip", "V1")]
    [TestCase("brotli", "V1")]
    [TestCase("snappy", "V2")]
    public async Task ReadRowsAsync_DuckDbWrittenFile_EqualsDuckDbsOwnReading(string codec, string version)
    {
        using var dir = new TempDir();
        var path = dir.File("duck.parquet");
        DuckDb.Query(Macro, $"COPY ({Source}) TO {DuckDb.Lit(path)} (FORMAT parquet, COMPRESSION {codec}, PARQUET_VERSION {version}, ROW_GROUP_SIZE 1024)", "SELECT 1");
        var expected = DuckDb.Query($"SELECT {string.Join(", ", ScalarColumns)}, d18::VARCHAR AS d18, d38::VARCHAR AS d38, d4::VARCHAR AS d4, to_json(li)::VARCHAR AS li, to_json(st)::VARCHAR AS st, to_json(mp)::VARCHAR AS mp FROM read_parquet({DuckDb.Lit(path)}) ORDER BY id");

        await using var reader = await ParquetReader.OpenAsync(path);
        var rows = new List<object?[]>();
        await foreach (var row in reader.ReadRowsAsync())
        {
            rows.Add(row);
        }

        Assert.That(rows, Has.Count.EqualTo(3000));
        Assert.That(reader.RowGroups, Has.Count.GreaterThan(1), "several row groups");
        Assert.That(reader.RowGroups.SelectMany(g => g.Columns).Select(c => c.Codec).Distinct(), Is.EqualTo(new[] { codec.ToUpperInvariant() }));
        var names = reader.Schema.Fields.Select(f => f.Name).ToList();
        rows.Sort((a, b) => ((long)a[0]!).CompareTo((long)b[0]!));
        Assert.Multiple(() =>
        {
            for (int r = 0; r < rows.Count; r++)
            {
                foreach (var column in ScalarColumns)
                {
                    Assert.That(Encode(rows[r][names.IndexOf(column)]), Is.EqualTo(expected.Str(r, column)), $"row {r} column {column}");
                }

                foreach (var column in new[] { "d18", "d38", "d4" })
                {
                    var text = expected.Str(r, column);
                    Assert.That(rows[r][names.IndexOf(column)], Is.EqualTo(text is null ? null : decimal.Parse(text, Inv)), $"row {r} column {column}");
                }

                foreach (var column in new[] { "li", "st", "mp" })
                {
                    Assert.That(Json(rows[r][names.IndexOf(column)]), Is.EqualTo(expected.Str(r, column)), $"row {r} column {column}");
                }
            }
        });
    }

    [Test]
    public async Task OpenAsync_DuckDbZstdFile_ReadFailsNamingZstd()
    {
        using var dir = new TempDir();
        var path = dir.File("zstd.parquet");
        DuckDb.Query($"COPY (SELECT range AS x FROM range(100)) TO {DuckDb.Lit(path)} (FORMAT parquet, COMPRESSION zstd)", "SELECT 1");

        await using var reader = await ParquetReader.OpenAsync(path);

        Assert.That(reader.RowGroups[0].Columns[0].Codec, Is.EqualTo("ZSTD"));
        var ex = await Assert.ThrowsAsync<NotSupportedException>(async () => await reader.ReadRowGroupAsync(0));
        Assert.That(ex!.Message, Does.Contain("ZSTD"));
    }

    [Test]
    public async Task ReadAllAsync_DuckDbFile_BindsToRecord()
    {
        using var dir = new TempDir();
        var path = dir.File("bind.parquet");
        DuckDb.Query($"COPY (SELECT i::INTEGER AS Id, 'n' || i AS Name, CASE WHEN i % 2 = 0 THEN NULL ELSE i * 1.5 END AS Score, [i, i + 1] AS Values FROM range(10) t(i)) TO {DuckDb.Lit(path)} (FORMAT parquet)", "SELECT 1");

        await using var reader = await ParquetReader.OpenAsync(path);
        var rows = await reader.ReadAllAsync<Bound>();

        Assert.That(rows.Select(r => r.Id), Is.EqualTo(Enumerable.Range(0, 10)));
        Assert.That(rows[3], Is.EqualTo(rows[3] with { Name = "n3", Score = 4.5 }));
        Assert.That(rows[2].Score, Is.Null);
        Assert.That(rows[5].Values, Is.EqualTo(new long[] { 5, 6 }));
    }

    public sealed record Bound(int Id, string Name, double? Score, long[] Values);

    /// <summary>Our value in the encoding query.js uses for DuckDB's.</summary>
    private static string? Encode(object? v) => v switch
    {
        null => null,
        bool b => b ? "true" : "false",
        sbyte or short or int or byte or ushort or uint => Convert.ToString(v, Inv),
        long l => l.ToString(Inv),
        ulong u => u.ToString(Inv),
        float f => DuckResult.Bits(f),
        double d => DuckResult.Bits(d),
        string s => s,
        byte[] bytes => Convert.ToHexString(bytes).ToLowerInvariant(),
        Guid g => g.ToString(),
        DateTime t => TestRows.UnixMicros(t).ToString(Inv),
        DateOnly d => (d.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber).ToString(Inv),
        TimeOnly t => (t.Ticks / 10).ToString(Inv),
        _ => v.ToString(),
    };

    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string? Json(object? v) => v is null ? null : JsonSerializer.Serialize(Plain(v), JsonOptions);

    private static object? Plain(object? v) => v switch
    {
        Dictionary<string, object?> g => g.ToDictionary(kv => kv.Key, kv => Plain(kv.Value)),
        Dictionary<object, object?> m => m.ToDictionary(kv => Convert.ToString(kv.Key, Inv)!, kv => Plain(kv.Value)),
        object?[] a => a.Select(Plain).ToArray(),
        _ => v,
    };
}
