#pragma warning disable CA1720 // Column names deliberately name their types.
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>Column-chunk statistics checked against DuckDB's parquet_metadata().</summary>
public class StatisticsTests
{
    public sealed record StatRow(
        int Signed, uint Unsigned, ulong ULong, long? Long, double Dbl, float Flt, string Text, string? Opt,
        [property: ParquetDecimal(10, 2)] decimal Dec, decimal Wide, Guid Id, bool Flag, DateTime At);

    private static List<StatRow> Rows()
    {
        var longMin = new string('a', 100);
        var longMax = new string('z', 70) + "tail";
        return
        [
            new(-5, 1, 1, null, double.NaN, -0.0f, "\uFFFD", null, -12.34m, -1.5m, Guid.Parse("00000000-0000-0000-0000-000000000001"), false, new DateTime(1960, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
            new(7, 3_000_000_000, ulong.MaxValue, -9, 2.5, 3.5f, "😀", "x", 99.99m, 123456789.123m, Guid.Parse("ff000000-0000-0000-0000-000000000000"), false, new DateTime(2030, 1, 1, 0, 0, 0, DateTimeKind.Utc)),
            new(0, 5, 2, 42, -0.0, 1f, longMin, null, 0m, 0m, Guid.Parse("7f000000-0000-0000-0000-000000000000"), false, DateTime.UnixEpoch),
            new(int.MinValue, 0, 3, null, -1e300, float.NaN, longMax, "y", -0.01m, -99999999999.5m, Guid.Empty, false, DateTime.UnixEpoch),
        ];
    }

    [Test]
    public async Task WriteAsync_Statistics_MatchDuckDbsReadingOfTheFooter()
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, Rows());

        var meta = DuckDb.Query($"SELECT path_in_schema AS p, stats_min_value AS mn, stats_max_value AS mx, stats_null_count::BIGINT AS nulls FROM parquet_metadata({DuckDb.Lit(path)}) ORDER BY column_id");
        var byColumn = Enumerable.Range(0, meta.Rows.Length).ToDictionary(i => meta.Str(i, "p")!, i => (Min: meta.Str(i, "mn"), Max: meta.Str(i, "mx"), Nulls: meta.Long(i, "nulls")));
        TestContext.Out.WriteLine(string.Join("\n", byColumn.Select(kv => $"{kv.Key}: {kv.Value}")));

        Assert.Multiple(() =>
        {
            Assert.That(byColumn["Signed"], Is.EqualTo(("-2147483648", "7", 0L)));
            Assert.That(byColumn["Unsigned"], Is.EqualTo(("0", "3000000000", 0L)), "UINT32 ordered unsigned");
            Assert.That(byColumn["ULong"], Is.EqualTo(("1", "18446744073709551615", 0L)), "UINT64 ordered unsigned");
            Assert.That(byColumn["Long"], Is.EqualTo(("-9", "42", 2L)));
            Assert.That(byColumn["Dbl"], Is.EqualTo(("-1e+300", "2.5", 0L)).Or.EqualTo(("-1e300", "2.5", 0L)), "NaN left out");
            Assert.That(byColumn["Flt"].Min, Is.EqualTo("-0.0"), "zero minimum is written as -0.0");
            Assert.That(byColumn["Flt"].Max, Is.EqualTo("3.5"));
            Assert.That(byColumn["Text"].Min, Is.EqualTo(new string('a', 64)), "minimum truncated to 64 bytes");
            Assert.That(byColumn["Text"].Max, Is.EqualTo("😀"), "UTF-8 byte order: U+1F600 sorts above U+FFFD");
            Assert.That(byColumn["Opt"], Is.EqualTo(("x", "y", 2L)));
            Assert.That(byColumn["Dec"], Is.EqualTo(("-12.34", "99.99", 0L)));
            Assert.That(byColumn["Wide"], Is.EqualTo(("-99999999999.500000000000000000", "123456789.123000000000000000", 0L)));
            Assert.That(byColumn["Flag"], Is.EqualTo(("false", "false", 0L)));
            Assert.That(byColumn["Id"], Is.EqualTo(("00000000-0000-0000-0000-000000000000", "ff000000-0000-0000-0000-000000000000", 0L)), "UUID unsigned byte order");
            Assert.That(byColumn["At"], Is.EqualTo(("1960-01-01 00:00:00+00", "2030-01-01 00:00:00+00", 0L)), "timestamps signed, pre-1970 negative");
        });
    }

    [Test]
    public async Task WriteAsync_LongStringMaximum_TruncatedAndRoundedUp()
    {
        using var dir = new TempDir();
        var rows = new List<TextRow> { new("b"), new(new string('z', 70) + "tail"), new("é" + new string('ÿ', 40)) };
        var path = await RoundTripTests.WriteAsync(dir, rows);

        await using var reader = await Kawa.Dataflow.Parquet.Reading.ParquetReader.OpenAsync(path);
        var chunk = reader.RowGroups[0].Columns[0];
        var max = System.Text.Encoding.UTF8.GetString(chunk.MaxValue!.Value.Span);
        var min = System.Text.Encoding.UTF8.GetString(chunk.MinValue!.Value.Span);

        // 'é' + 'ÿ'... is the maximum by UTF-8 bytes (0xC3 0xA9 > 'z'); 81 bytes, so it is cut at a character
        // boundary within 64 bytes and its last character incremented: still above every value.
        Assert.That(min, Is.EqualTo("b"));
        Assert.That(System.Text.Encoding.UTF8.GetByteCount(max), Is.LessThanOrEqualTo(64));
        Assert.That(string.CompareOrdinal(max, "é" + new string('ÿ', 40)), Is.GreaterThan(0));
        Assert.That(max, Does.StartWith("é" + new string('ÿ', 30)));
        Assert.That(max[^1], Is.EqualTo((char)('ÿ' + 1)));
    }

    public sealed record TextRow(string Text);
}
