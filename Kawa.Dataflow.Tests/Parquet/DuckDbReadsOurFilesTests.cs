using System.Globalization;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet;

/// <summary>Files we write, read by DuckDB (an independent reader), compared cell by cell with exact encodings.</summary>
public class DuckDbReadsOurFilesTests
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    private static readonly ParquetCompression[] Codecs =
        [ParquetCompression.Uncompressed, ParquetCompression.Snappy, ParquetCompression.Gzip, ParquetCompression.Brotli];

    private static string F(double d) => DuckResult.Bits(d);

    private static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();

    /// <summary>Expected DuckDB cell text per column (raw JSON text for numbers/booleans, string value otherwise).</summary>
    private static readonly (string Column, Func<AllTypes, string?> Expected)[] Columns =
    [
        ("Id", r => r.Id.ToString(Inv)),
        ("Bool", r => r.Bool ? "true" : "false"),
        ("BoolN", r => r.BoolN is { } b ? (b ? "true" : "false") : null),
        ("SByte", r => r.SByte.ToString(Inv)),
        ("Short", r => r.Short.ToString(Inv)),
        ("Int", r => r.Int.ToString(Inv)),
        ("Long", r => r.Long.ToString(Inv)),
        ("LongN", r => r.LongN?.ToString(Inv)),
        ("Byte", r => r.Byte.ToString(Inv)),
        ("UShort", r => r.UShort.ToString(Inv)),
        ("UInt", r => r.UInt.ToString(Inv)),
        ("ULong", r => r.ULong.ToString(Inv)),
        ("Float", r => F(r.Float)),
        ("Float2", r => F(r.Float2)),
        ("Double", r => F(r.Double)),
        ("DoubleN", r => r.DoubleN is { } d ? F(d) : null),
        ("Text", r => r.Text),
        ("TextN", r => r.TextN),
        ("Blob", r => r.Blob is null ? null : Hex(r.Blob)),
        ("Uuid", r => r.Uuid.ToString()),
        ("UuidN", r => r.UuidN?.ToString()),
        ("Ts", r => TestRows.UnixMicros(r.Ts).ToString(Inv)),
        ("TsOffset", r => TestRows.FloorDiv10(r.TsOffset.UtcTicks - DateTime.UnixEpoch.Ticks).ToString(Inv)),
        ("TsN", r => r.TsN is { } t ? TestRows.UnixMicros(t).ToString(Inv) : null),
        ("Date", r => (r.Date.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber).ToString(Inv)),
        ("Time", r => (r.Time.Ticks / 10).ToString(Inv)),
        ("Span", r => TestRows.FloorDiv10(r.Span.Ticks).ToString(Inv)),
        ("Color", r => r.Color.ToString()),
        ("ColorN", r => r.ColorN?.ToString()),
    ];

    [TestCaseSource(nameof(Codecs))]
    public Task WriteAsync_AllTypes_DuckDbReadsEveryCellExactly(ParquetCompression codec) =>
        AssertDuckDbReadsAllTypesAsync(new ParquetWriterOptions { Compression = codec });

    [TestCaseSource(nameof(Codecs))]
    public Task WriteAsync_AllTypesDataPageV2_DuckDbReadsEveryCellExactly(ParquetCompression codec) =>
        AssertDuckDbReadsAllTypesAsync(new ParquetWriterOptions { Compression = codec, DataPageVersion = ParquetDataPageVersion.V2, PageSize = 1024 });

    private static async Task AssertDuckDbReadsAllTypesAsync(ParquetWriterOptions options)
    {
        using var dir = new TempDir();
        var rows = TestRows.AllTypes();
        var path = await RoundTripTests.WriteAsync(dir, rows, options);

        var result = DuckDb.Query($"select * from read_parquet({DuckDb.Lit(path)}) order by Id");

        Assert.That(result.Rows, Has.Length.EqualTo(rows.Count));
        Assert.Multiple(() =>
        {
            for (int i = 0; i < rows.Count; i++)
            {
                foreach (var (column, expected) in Columns)
                {
                    Assert.That(result.Str(i, column), Is.EqualTo(expected(rows[i])), $"row {i} column {column}");
                }

                foreach (var (column, value) in new[] { ("Dec", (decimal?)rows[i].Dec), ("Dec18", rows[i].Dec18), ("Dec9N", rows[i].Dec9N) })
                {
                    var text = result.Str(i, column);
                    Assert.That(text is null ? (decimal?)null : decimal.Parse(text, Inv), Is.EqualTo(value), $"row {i} column {column}");
                }
            }
        });
    }

    [Test]
    public async Task WriteAsync_AllTypes_DuckDbSeesParquetTypes()
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, TestRows.AllTypes(5));

        var result = DuckDb.Query($"select * from read_parquet({DuckDb.Lit(path)}) limit 0");
        var types = result.Columns.Zip(result.Types).ToDictionary(p => p.First, p => p.Second);

        Assert.Multiple(() =>
        {
            Assert.That(types["SByte"], Is.EqualTo("TINYINT"));
            Assert.That(types["Short"], Is.EqualTo("SMALLINT"));
            Assert.That(types["Byte"], Is.EqualTo("UTINYINT"));
            Assert.That(types["UShort"], Is.EqualTo("USMALLINT"));
            Assert.That(types["UInt"], Is.EqualTo("UINTEGER"));
            Assert.That(types["ULong"], Is.EqualTo("UBIGINT"));
            Assert.That(types["Dec"], Is.EqualTo("DECIMAL(38,18)"));
            Assert.That(types["Dec18"], Is.EqualTo("DECIMAL(18,4)"));
            Assert.That(types["Dec9N"], Is.EqualTo("DECIMAL(9,2)"));
            Assert.That(types["Uuid"], Is.EqualTo("UUID"));
            Assert.That(types["Ts"], Is.EqualTo("TIMESTAMP WITH TIME ZONE"));
            Assert.That(types["Date"], Is.EqualTo("DATE"));
            Assert.That(types["Time"], Is.EqualTo("TIME"));
            Assert.That(types["Text"], Is.EqualTo("VARCHAR"));
            Assert.That(types["Blob"], Is.EqualTo("BLOB"));
            Assert.That(types["Span"], Is.EqualTo("BIGINT"));
        });
    }

    [Test]
    public async Task WriteAsync_NanosecondTimestamps_ReaderKeepsTicksAndDuckDbReadsTheInstant()
    {
        using var dir = new TempDir();
        var rows = new List<TsRow> { new(new DateTime(2024, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234567)), new(new DateTime(1950, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(3)) };
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { TimestampUnit = Kawa.Dataflow.Parquet.Schema.ParquetTimestampUnit.Nanoseconds });

        var result = DuckDb.Query($"select epoch_us(\"At\")::varchar as us from read_parquet({DuckDb.Lit(path)})");
        await using var reader = await Kawa.Dataflow.Parquet.Reading.ParquetReader.OpenAsync(path);
        var back = await reader.ReadAllAsync<TsRow>();

        // DuckDB maps UTC-adjusted TIMESTAMP(NANOS) to TIMESTAMP WITH TIME ZONE (microseconds, its own
        // conversion truncating toward zero); the file itself holds the nanoseconds, as our reader shows.
        Assert.That(result.Str(0, "us"), Is.EqualTo(((rows[0].At.Ticks - DateTime.UnixEpoch.Ticks) * 100 / 1000).ToString(Inv)));
        Assert.That(result.Str(1, "us"), Is.EqualTo(((rows[1].At.Ticks - DateTime.UnixEpoch.Ticks) * 100 / 1000).ToString(Inv)));
        Assert.That(back.Select(r => r.At.Ticks), Is.EqualTo(rows.Select(r => r.At.Ticks)));
    }

    [Test]
    public async Task WriteAsync_NanosecondTimestampOutOfRange_FailsNamingColumn()
    {
        using var dir = new TempDir();
        var path = dir.File("ns.parquet");
        await using var writer = new ParquetWriter<TsRow>(File.Create(path), new ParquetWriterOptions { TimestampUnit = Kawa.Dataflow.Parquet.Schema.ParquetTimestampUnit.Nanoseconds });

        var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([new TsRow(new DateTime(1500, 1, 1, 0, 0, 0, DateTimeKind.Utc))]));

        Assert.That(ex!.Message, Does.Contain("At").And.Contain("NANOS"));
    }

    public sealed record TsRow(DateTime At);

    [TestCaseSource(nameof(Codecs))]
    public Task WriteAsync_Nested_DuckDbSeesListsStructsMapsWithNullsAndEmpties(ParquetCompression codec) =>
        AssertDuckDbReadsNestedAsync(new ParquetWriterOptions { Compression = codec });

    [TestCaseSource(nameof(Codecs))]
    public Task WriteAsync_NestedDataPageV2_DuckDbSeesListsStructsMapsWithNullsAndEmpties(ParquetCompression codec) =>
        AssertDuckDbReadsNestedAsync(new ParquetWriterOptions { Compression = codec, DataPageVersion = ParquetDataPageVersion.V2, PageSize = 1024 });

    private static async Task AssertDuckDbReadsNestedAsync(ParquetWriterOptions options)
    {
        using var dir = new TempDir();
        var rows = TestRows.Nested();
        var path = await RoundTripTests.WriteAsync(dir, rows, options);
        var codecs = DuckDb.Query($"select distinct compression from parquet_metadata({DuckDb.Lit(path)})");
        Assert.That(codecs.Rows.Select(r => r[0].GetString()), Is.EqualTo(new[] { options.Compression.ToString().ToUpperInvariant() }), "every chunk uses the codec under test");

        var result = DuckDb.Query($"select Id, to_json(Items)::varchar as items, to_json(Counts)::varchar as counts, to_json(Tags)::varchar as tags, to_json(Single)::varchar as single, to_json(Names)::varchar as names, to_json(Longs)::varchar as longs, to_json(Matrix)::varchar as matrix from read_parquet({DuckDb.Lit(path)}) order by Id");

        Assert.Multiple(() =>
        {
            Assert.That(result.Str(0, "items"), Is.Null);
            Assert.That(result.Str(0, "counts"), Is.Null);
            Assert.That(result.Str(0, "single"), Is.Null);
            Assert.That(result.Str(0, "names"), Is.EqualTo("[]"));
            Assert.That(result.Str(1, "items"), Is.EqualTo("[]"));
            Assert.That(result.Str(1, "counts"), Is.EqualTo("{}"));
            Assert.That(result.Str(1, "single"), Is.EqualTo("{\"Values\":null,\"Label\":null}"));
            Assert.That(result.Str(1, "longs"), Is.EqualTo("[]"));
            Assert.That(result.Str(2, "items"), Is.EqualTo("[null,{\"Values\":null,\"Label\":\"no values\"},{\"Values\":[],\"Label\":\"empty\"},{\"Values\":[null],\"Label\":\"one null\"},{\"Values\":[1,null,3],\"Label\":null}]"));
            Assert.That(result.Str(2, "counts"), Is.EqualTo("{\"a\":1,\"b\":null,\"c\":-2147483648}"));
            Assert.That(result.Str(2, "tags"), Is.EqualTo("{\"x\":[],\"y\":[\"p\",\"q\"]}"));
            Assert.That(result.Str(2, "names"), Is.EqualTo("[\"\",\"ü\",\"🎉\"]"));
            Assert.That(result.Str(2, "longs"), Is.EqualTo("[-9223372036854775808,0,9223372036854775807]"));
            Assert.That(result.Str(3, "items"), Is.EqualTo("[{\"Values\":[2147483647,-2147483648],\"Label\":\"x\"}]"));
            Assert.That(result.Str(3, "longs"), Is.Null);
            Assert.That(result.Str(4, "items"), Is.EqualTo("[null]"));
            Assert.That(result.Str(4, "counts"), Is.EqualTo("{\"only\":null}"));
            Assert.That(result.Str(2, "matrix"), Is.EqualTo("[[1,2],null,[],[null,5]]"), "list<list<int?>> with null and empty inner lists");
            Assert.That(result.Str(3, "matrix"), Is.EqualTo("[]"));
            Assert.That(result.Str(0, "matrix"), Is.Null);
        });
    }
}
