using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>
/// Which encoding the writer chooses per column chunk: dictionary (RLE_DICTIONARY data pages after a dictionary page)
/// where it pays, PLAIN otherwise. Read back from the file independently: the chunk's encodings and offsets as DuckDB's
/// <c>parquet_metadata()</c> reports them, and the encoding of every data page from the page headers in the file.
/// </summary>
public class EncodingChoiceTests
{
    /// <summary>One column chunk: footer encodings (DuckDB's text), dictionary pages, and each data page's encoding.</summary>
    internal sealed record ChunkEncodings(long RowGroup, string Column, string Encodings, int DictionaryPages, IReadOnlyList<PageEncoding> DataPages)
    {
        public bool IsDictionary => Encodings.Contains("RLE_DICTIONARY", StringComparison.Ordinal) && DictionaryPages == 1
            && DataPages.Count > 0 && DataPages.All(e => e == PageEncoding.RleDictionary);

        public bool IsPlain => !Encodings.Contains("DICTIONARY", StringComparison.Ordinal) && DictionaryPages == 0
            && DataPages.Count > 0 && DataPages.All(e => e == PageEncoding.Plain);

        public override string ToString() => $"row group {RowGroup} {Column}: [{Encodings}], {DictionaryPages} dictionary page(s), data pages [{string.Join(", ", DataPages)}]";
    }

    internal static List<ChunkEncodings> Chunks(string path)
    {
        var r = DuckDb.Query($"select row_group_id::BIGINT as rg, path_in_schema as p, encodings as e, dictionary_page_offset::BIGINT as d, data_page_offset::BIGINT as o, total_compressed_size::BIGINT as n from parquet_metadata({DuckDb.Lit(path)}) order by row_group_id, column_id");
        var bytes = File.ReadAllBytes(path);
        var chunks = new List<ChunkEncodings>();
        for (int i = 0; i < r.Rows.Length; i++)
        {
            long start = r.Str(i, "d") is null ? r.Long(i, "o") : r.Long(i, "d");
            long end = start + r.Long(i, "n");
            int dictionaryPages = 0;
            var dataPages = new List<PageEncoding>();
            for (long pos = start; pos < end;)
            {
                var header = PageHeader.Read(bytes.AsSpan((int)pos, (int)(end - pos)), out int headerLength);
                switch (header.Type)
                {
                    case PageType.DictionaryPage: dictionaryPages++; break;
                    case PageType.DataPage: dataPages.Add(header.DataPageHeader!.Encoding); break;
                    case PageType.DataPageV2: dataPages.Add(header.DataPageHeaderV2!.Encoding); break;
                }

                pos += headerLength + header.CompressedPageSize;
            }

            chunks.Add(new ChunkEncodings(r.Long(i, "rg"), r.Str(i, "p")!, r.Str(i, "e")!, dictionaryPages, dataPages));
        }

        return chunks;
    }

    private static ChunkEncodings Chunk(List<ChunkEncodings> chunks, string column, long rowGroup = 0) =>
        chunks.Single(c => c.Column == column && c.RowGroup == rowGroup);

    public sealed record Numbers(int Id, int LowInt, int? LowIntN, long LowLong, double LowDouble, int HighInt, long HighLong, double HighDouble);

    private static List<Numbers> NumberRows(int count) => Enumerable.Range(0, count).Select(i => new Numbers(
        i,
        (i % 16) - 8,
        i % 3 == 0 ? null : i % 5,
        (i % 12) * 1_000_000_000_000L,
        (i % 9) / 4.0,
        i * 7919,
        unchecked(i * -7046029254386353131L),
        i * Math.PI)).ToList();

    [Test]
    public async Task WriteAsync_LowAndHighCardinalityNumbers_DictionaryOnlyWhereItPays()
    {
        using var dir = new TempDir();
        var rows = NumberRows(20_000);
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { PageSize = 16 * 1024 }, batch: 3000);

        var chunks = Chunks(path);

        Assert.Multiple(() =>
        {
            foreach (var column in new[] { "LowInt", "LowIntN", "LowLong", "LowDouble" })
            {
                Assert.That(Chunk(chunks, column).IsDictionary, Is.True, Chunk(chunks, column).ToString());
            }

            foreach (var column in new[] { "Id", "HighInt", "HighLong", "HighDouble" })
            {
                Assert.That(Chunk(chunks, column).IsPlain, Is.True, Chunk(chunks, column).ToString());
            }

            Assert.That(Chunk(chunks, "HighDouble").DataPages, Has.Count.GreaterThan(1), "several PLAIN pages");
        });

        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(await reader.ReadAllAsync<Numbers>(), Is.EqualTo(rows));
        var duck = DuckDb.Query($"select LowInt, LowIntN, LowLong::varchar as LowLong, LowDouble, HighLong::varchar as HighLong from read_parquet({DuckDb.Lit(path)}) order by Id");
        Assert.Multiple(() =>
        {
            for (int i = 0; i < rows.Count; i++)
            {
                var (lowInt, lowIntN, lowLong, lowDouble, highLong) = (duck.Long(i, "LowInt"), duck.Str(i, "LowIntN"), duck.Long(i, "LowLong"), duck.Double(i, "LowDouble"), duck.Long(i, "HighLong"));
                Assert.That((lowInt, lowIntN, lowLong, lowDouble, highLong), Is.EqualTo(((long)rows[i].LowInt, rows[i].LowIntN?.ToString(System.Globalization.CultureInfo.InvariantCulture), rows[i].LowLong, (double?)rows[i].LowDouble, rows[i].HighLong)), $"row {i}");
            }
        });
    }

    public sealed record OneInt(int Value);

    [TestCase(63, false)]
    [TestCase(64, true)]
    public async Task WriteAsync_RepeatedNumberInSmallChunk_DictionaryFromSixtyFourValues(int count, bool dictionary)
    {
        using var dir = new TempDir();
        var path = await RoundTripTests.WriteAsync(dir, Enumerable.Repeat(new OneInt(42), count).ToList());

        var chunk = Chunk(Chunks(path), "Value");

        Assert.That(dictionary ? chunk.IsDictionary : chunk.IsPlain, Is.True, chunk.ToString());
    }

    public sealed record Texts(int Id, string Text, string? TextN);

    [Test]
    public async Task WriteAsync_LowCardinalityStrings_DictionaryEncodedAndReadBack()
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 10_000).Select(i => new Texts(i, "v-" + (i % 20), i % 4 == 0 ? null : "ü" + (i % 3))).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { PageSize = 4096 }, batch: 1500);

        var chunks = Chunks(path);

        Assert.That(Chunk(chunks, "Text").IsDictionary, Is.True, Chunk(chunks, "Text").ToString());
        Assert.That(Chunk(chunks, "TextN").IsDictionary, Is.True, Chunk(chunks, "TextN").ToString());
        await AssertReadBackAsync(path, rows);
    }

    /// <summary>
    /// 3,000 rows of ten short strings, then 200 distinct 60-byte strings repeating: the probe at 4,096 values sees few
    /// distinct ones, so only the dictionary's size can make the column fall back, in the fourth of five batches.
    /// </summary>
    [TestCase(4096, false)]
    [TestCase(1024 * 1024, true)]
    public async Task WriteAsync_StringDictionaryOutgrowsDictionaryMaxBytesMidChunk_WholeChunkPlainAndValuesExact(int dictionaryMaxBytes, bool dictionary)
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 5000).Select(i =>
        {
            string text = i < 3000 ? "s" + (i % 10) : new string('x', 60) + (i % 200);
            return new Texts(i, text, i % 4 == 0 ? null : text);
        }).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { PageSize = 4096, DictionaryMaxBytes = dictionaryMaxBytes }, batch: 1000);

        var chunks = Chunks(path);

        Assert.Multiple(() =>
        {
            foreach (var column in new[] { "Text", "TextN" })
            {
                var chunk = Chunk(chunks, column);
                Assert.That(dictionary ? chunk.IsDictionary : chunk.IsPlain, Is.True, chunk.ToString());
            }

            if (!dictionary)
            {
                Assert.That(Chunk(chunks, "Text").DataPages, Has.Count.GreaterThan(1), "every one of several pages is PLAIN");
            }
        });
        await AssertReadBackAsync(path, rows);
    }

    /// <summary>
    /// The first 4,096 values hold <paramref name="distinct"/> distinct strings, the rest repeat ten of them: past half
    /// distinct at the probe the column falls back to PLAIN for good, even though the whole chunk repeats a lot.
    /// </summary>
    [TestCase(2048, true)]
    [TestCase(2049, false)]
    public async Task WriteAsync_DistinctStringsAtTheProbe_MoreThanHalfFallsBackToPlain(int distinct, bool dictionary)
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 10_000).Select(i =>
        {
            string text = i < 4096 ? "p-" + (i < distinct ? i : 0) : "p-" + (i % 10);
            return new Texts(i, text, null);
        }).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { PageSize = 8192 }, batch: 3000);

        var chunk = Chunk(Chunks(path), "Text");

        Assert.That(dictionary ? chunk.IsDictionary : chunk.IsPlain, Is.True, chunk.ToString());
        await AssertReadBackAsync(path, rows);
    }

    [Test]
    public async Task WriteAsync_FallbackInOneRowGroup_NextRowGroupStartsWithDictionaryAgain()
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 15_000).Select(i =>
        {
            string text = (i / 5000) switch
            {
                1 => "low-" + (i % 10),
                _ => "distinct-" + i,
            };
            return new Texts(i, text, i % 2 == 0 ? text : null);
        }).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { RowGroupMaxRows = 5000 }, batch: 2500);

        var chunks = Chunks(path);

        Assert.That(chunks.Select(c => c.RowGroup).Distinct(), Is.EqualTo(new long[] { 0, 1, 2 }));
        Assert.Multiple(() =>
        {
            Assert.That(Chunk(chunks, "Text", 0).IsPlain, Is.True, Chunk(chunks, "Text", 0).ToString());
            Assert.That(Chunk(chunks, "Text", 1).IsDictionary, Is.True, Chunk(chunks, "Text", 1).ToString());
            Assert.That(Chunk(chunks, "Text", 2).IsPlain, Is.True, Chunk(chunks, "Text", 2).ToString());
            Assert.That(Chunk(chunks, "TextN", 1).IsDictionary, Is.True, Chunk(chunks, "TextN", 1).ToString());
        });
        await AssertReadBackAsync(path, rows);
    }

    public sealed record Priced(int Id, string Text, [property: ParquetDecimal(9, 2)] decimal Amount);

    [Test]
    public async Task WriteAsync_BatchFailsAfterItsStringsFellBackToPlain_FileHoldsTheOtherBatchesExactly()
    {
        using var dir = new TempDir();
        var path = dir.File("priced.parquet");
        var first = Enumerable.Range(0, 1000).Select(i => new Priced(i, "a" + (i % 5), i)).ToList();

        // 3,096 distinct strings reach the probe at the 4,096th value of the chunk (the column falls back), then the
        // last row's amount does not fit DECIMAL(9, 2) and the whole batch is undone.
        var failing = Enumerable.Range(1000, 3200).Select(i => new Priced(i, "b-" + i, i == 4199 ? 100_000_000m : 1m)).ToList();
        var last = Enumerable.Range(5000, 600).Select(i => new Priced(i, "c" + (i % 3), i / 100m)).ToList();
        await using (var writer = new ParquetWriter<Priced>(File.Create(path)))
        {
            await writer.WriteAsync(first);
            var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync(failing));
            Assert.That(ex!.Message, Does.Contain("Amount"));
            await writer.WriteAsync(last);
        }

        var expected = first.Concat(last).ToList();
        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(await reader.ReadAllAsync<Priced>(), Is.EqualTo(expected));
        var duck = DuckDb.Query($"select Id, Text, Amount::varchar as Amount from read_parquet({DuckDb.Lit(path)}) order by Id");
        Assert.That(duck.Rows, Has.Length.EqualTo(expected.Count));
        Assert.Multiple(() =>
        {
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.That((duck.Long(i, "Id"), duck.Str(i, "Text"), decimal.Parse(duck.Str(i, "Amount")!, System.Globalization.CultureInfo.InvariantCulture)),
                    Is.EqualTo(((long)expected[i].Id, expected[i].Text, expected[i].Amount)), $"row {i}");
            }
        });
    }

    private static async Task AssertReadBackAsync(string path, List<Texts> rows)
    {
        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(await reader.ReadAllAsync<Texts>(), Is.EqualTo(rows), "our reader");
        var duck = DuckDb.Query($"select Id, Text, TextN from read_parquet({DuckDb.Lit(path)}) order by Id");
        Assert.That(duck.Rows, Has.Length.EqualTo(rows.Count));
        var mismatches = Enumerable.Range(0, rows.Count)
            .Where(i => duck.Long(i, "Id") != rows[i].Id || duck.Str(i, "Text") != rows[i].Text || duck.Str(i, "TextN") != rows[i].TextN)
            .Select(i => $"row {i}: DuckDB ({duck.Str(i, "Id")}, {duck.Str(i, "Text")}, {duck.Str(i, "TextN")})")
            .Take(5).ToList();
        Assert.That(mismatches, Is.Empty, "DuckDB");
    }
}
