using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet;

public class RoundTripTests
{
    private static readonly ParquetCompression[] Codecs =
        [ParquetCompression.Uncompressed, ParquetCompression.Snappy, ParquetCompression.Gzip, ParquetCompression.Brotli];

    internal static async Task<string> WriteAsync<T>(TempDir dir, IReadOnlyList<T> rows, ParquetWriterOptions? options = null, string name = "data.parquet", int batch = int.MaxValue)
    {
        var path = dir.File(name);
        await using var writer = new ParquetWriter<T>(File.Create(path), options);
        for (int i = 0; i < rows.Count; i += batch)
        {
            await writer.WriteAsync(rows.Skip(i).Take(batch).ToList());
        }

        return path;
    }

    [TestCaseSource(nameof(Codecs))]
    public async Task WriteAsync_AllTypes_ReaderReturnsSameValues(ParquetCompression codec)
    {
        using var dir = new TempDir();
        var rows = TestRows.AllTypes();
        var path = await WriteAsync(dir, rows, new ParquetWriterOptions { Compression = codec });

        await using var reader = await ParquetReader.OpenAsync(path);
        var back = await reader.ReadAllAsync<AllTypes>();

        Assert.That(back, Has.Count.EqualTo(rows.Count));
        for (int i = 0; i < rows.Count; i++)
        {
            Deep.AssertEqual(TestRows.Expected(rows[i]), back[i], $"row {i}");
        }

        Assert.That(reader.RowGroups.SelectMany(g => g.Columns).Select(c => c.Codec).Distinct(),
            Is.EqualTo(new[] { codec.ToString().ToUpperInvariant() }));
    }

    [TestCaseSource(nameof(Codecs))]
    public async Task WriteAsync_Nested_ReaderReturnsSameValues(ParquetCompression codec)
    {
        using var dir = new TempDir();
        var rows = TestRows.Nested();
        var path = await WriteAsync(dir, rows, new ParquetWriterOptions { Compression = codec });

        await using var reader = await ParquetReader.OpenAsync(path);
        var back = await reader.ReadAllAsync<Nested>();

        Assert.That(back, Has.Count.EqualTo(rows.Count));
        for (int i = 0; i < rows.Count; i++)
        {
            // Null collections of non-nullable declared type stay null; Names is required and never null.
            Deep.AssertEqual(rows[i], back[i], $"row {i}");
        }
    }

    [Test]
    public async Task WriteAsync_ManyBatchesSmallRowGroups_AllRowsBackInOrder()
    {
        using var dir = new TempDir();
        var rows = TestRows.AllTypes(2000);
        var path = await WriteAsync(dir, rows, new ParquetWriterOptions { RowGroupMaxRows = 300, PageSize = 4096 }, batch: 100);

        await using var reader = await ParquetReader.OpenAsync(path);
        var back = await reader.ReadAllAsync<AllTypes>();

        Assert.That(reader.RowGroups, Has.Count.EqualTo(7));
        Assert.That(reader.RowGroups.Select(g => g.RowCount), Is.All.LessThanOrEqualTo(300));
        for (int i = 0; i < rows.Count; i++)
        {
            Deep.AssertEqual(TestRows.Expected(rows[i]), back[i], $"row {i}");
        }
    }
}
