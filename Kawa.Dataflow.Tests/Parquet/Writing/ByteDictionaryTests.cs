using System.Buffers.Binary;
using System.Globalization;
using Kawa.Dataflow.Parquet.Format;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>Dictionary encoding of binary (BYTE_ARRAY) and fixed-length (UUID, wide DECIMAL) columns.</summary>
public class ByteDictionaryTests
{
    public sealed record Binary(
        int Id,
        byte[] Blob,
        byte[]? BlobN,
        Guid Uuid,
        Guid? UuidN,
        [property: ParquetDecimal(38, 4)] decimal Wide);

    private static List<Binary> Repeating(int count)
    {
        var blobs = Enumerable.Range(0, 20).Select(i => Enumerable.Range(0, i * 7).Select(b => (byte)(b * 31 + i)).ToArray()).ToArray(); // includes []
        var uuids = Enumerable.Range(0, 12).Select(i => new Guid(i, (short)i, (short)(i * 3), [1, 2, 3, 4, 5, 6, 7, (byte)i])).Append(Guid.Empty).ToArray();
        var decimals = Enumerable.Range(0, 15).Select(i => (i - 7) * 123456789012345.6789m / (i + 1)).Select(d => Math.Round(d, 4)).ToArray();
        var random = new Random(5);
        return Enumerable.Range(0, count).Select(i => new Binary(
            i,
            blobs[random.Next(blobs.Length)],
            i % 4 == 0 ? null : blobs[random.Next(blobs.Length)],
            uuids[random.Next(uuids.Length)],
            i % 5 == 0 ? null : uuids[random.Next(uuids.Length)],
            decimals[random.Next(decimals.Length)])).ToList();
    }

    private static ParquetColumnChunkInfo Chunk(ParquetReader reader, string column) =>
        reader.RowGroups[0].Columns.Single(c => c.Path == column);

    [Test]
    public async Task WriteAsync_RepeatedBinaryAndFixedLengthValues_AreDictionaryEncodedAndReadBackExactly()
    {
        using var dir = new TempDir();
        var rows = Repeating(10_000);
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { PageSize = 4096 }, batch: 1000);

        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.Multiple(() =>
        {
            foreach (var column in new[] { "Blob", "BlobN", "Uuid", "UuidN", "Wide" })
            {
                var chunk = Chunk(reader, column);
                Assert.That(chunk.HasDictionaryPage, Is.True, column);
                Assert.That(chunk.Encodings, Does.Contain("RleDictionary"), column);
            }
        });
        var back = await reader.ReadAllAsync<Binary>();
        Assert.That(back, Has.Count.EqualTo(rows.Count));
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.That(back[i].Blob, Is.EqualTo(rows[i].Blob), $"row {i}");
            Assert.That(back[i].BlobN, Is.EqualTo(rows[i].BlobN), $"row {i}");
            Assert.That((back[i].Id, back[i].Uuid, back[i].UuidN, back[i].Wide), Is.EqualTo((rows[i].Id, rows[i].Uuid, rows[i].UuidN, rows[i].Wide)), $"row {i}");
        }
    }

    [Test]
    public async Task WriteAsync_DictionaryEncodedBinaryAndFixedLength_DuckDbReadsEveryCell()
    {
        using var dir = new TempDir();
        var rows = Repeating(3_000);
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { Compression = ParquetCompression.Snappy }, batch: 700);

        var result = DuckDb.Query($"select Id, Blob, BlobN, Uuid, UuidN, Wide::varchar as Wide from read_parquet({DuckDb.Lit(path)}) order by Id");

        Assert.That(result.Rows, Has.Length.EqualTo(rows.Count));
        static string Hex(byte[] b) => Convert.ToHexString(b).ToLowerInvariant();
        Assert.Multiple(() =>
        {
            for (int i = 0; i < rows.Count; i++)
            {
                var r = rows[i];
                Assert.That(result.Str(i, "Blob"), Is.EqualTo(Hex(r.Blob)), $"row {i}");
                Assert.That(result.Str(i, "BlobN"), Is.EqualTo(r.BlobN is null ? null : Hex(r.BlobN)), $"row {i}");
                Assert.That(result.Str(i, "Uuid"), Is.EqualTo(r.Uuid.ToString()), $"row {i}");
                Assert.That(result.Str(i, "UuidN"), Is.EqualTo(r.UuidN?.ToString()), $"row {i}");
                Assert.That(decimal.Parse(result.Str(i, "Wide")!, CultureInfo.InvariantCulture), Is.EqualTo(r.Wide), $"row {i}");
            }
        });
    }

    [Test]
    public async Task WriteAsync_MostlyDistinctBinaryAndUuids_FallBackToPlain()
    {
        using var dir = new TempDir();
        var random = new Random(9);
        var rows = Enumerable.Range(0, 6000).Select(i =>
        {
            var blob = new byte[16];
            random.NextBytes(blob);
            return new Binary(i, blob, null, Guid.NewGuid(), Guid.NewGuid(), i);
        }).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows);

        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.Multiple(() =>
        {
            foreach (var column in new[] { "Blob", "Uuid", "UuidN", "Wide" })
            {
                Assert.That(Chunk(reader, column).HasDictionaryPage, Is.False, column);
                Assert.That(Chunk(reader, column).Encodings, Does.Not.Contain("RleDictionary"), column);
            }
        });
        var back = await reader.ReadAllAsync<Binary>();
        Assert.That(back.Select(b => Convert.ToHexString(b.Blob)), Is.EqualTo(rows.Select(b => Convert.ToHexString(b.Blob))));
        Assert.That(back.Select(b => (b.Uuid, b.UuidN, b.Wide)), Is.EqualTo(rows.Select(b => (b.Uuid, b.UuidN, b.Wide))));
    }

    [Test]
    public async Task WriteAsync_BinaryDictionaryPastDictionaryMaxBytes_FallsBackToPlain()
    {
        using var dir = new TempDir();
        // 40 distinct 100-byte values repeat (a dictionary would pay) but their dictionary (~4 KB) passes the 2 KB limit.
        var blobs = Enumerable.Range(0, 40).Select(i => Enumerable.Repeat((byte)i, 100).ToArray()).ToArray();
        var rows = Enumerable.Range(0, 2000).Select(i => new Binary(i, blobs[i % 40], blobs[(i * 7) % 40], Guid.Empty, null, 1m)).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { DictionaryMaxBytes = 2048 });

        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(Chunk(reader, "Blob").HasDictionaryPage, Is.False);
        Assert.That(Chunk(reader, "Uuid").HasDictionaryPage, Is.True, "one repeated UUID stays within the limit");
        var back = await reader.ReadAllAsync<Binary>();
        Assert.That(back.Select(b => b.Blob[0]), Is.EqualTo(rows.Select(b => b.Blob[0])));
        Assert.That(back.Select(b => b.BlobN![0]), Is.EqualTo(rows.Select(b => b.BlobN![0])));
    }

    [Test]
    public async Task WriteAsync_DictionaryDisabled_WritesBinaryPlain()
    {
        using var dir = new TempDir();
        var rows = Repeating(500);
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { DictionaryMaxBytes = 0 });

        await using var reader = await ParquetReader.OpenAsync(path);

        Assert.That(reader.RowGroups[0].Columns.Where(c => c.HasDictionaryPage).Select(c => c.Path), Is.Empty);
        Assert.That((await reader.ReadAllAsync<Binary>()).Select(b => b.Uuid), Is.EqualTo(rows.Select(r => r.Uuid)));
    }

    [Test]
    public void GetOrAdd_ManyValuesAcrossRehashes_SameBytesSameEntryAndPlainPage()
    {
        var page = new ByteBuffer(16);
        var dict = new ByteDictionary(lengthPrefixed: true);
        dict.Reset(page);
        var values = Enumerable.Range(0, 5000).Select(i => BitConverter.GetBytes(i * 2654435761L).AsSpan(0, 1 + (i % 8)).ToArray()).ToList();
        var distinct = values.Select(Convert.ToHexString).Distinct().ToList();

        var first = values.Select(v => dict.GetOrAdd(v)).ToList();
        var second = values.Select(v => dict.GetOrAdd(v)).ToList();

        Assert.That(second, Is.EqualTo(first));
        Assert.That(dict.Count, Is.EqualTo(distinct.Count));
        Assert.That(first.Distinct().Count(), Is.EqualTo(distinct.Count));
        // The page is PLAIN BYTE_ARRAY: entry k is the k-th distinct value, length-prefixed.
        var decoded = new List<string>();
        var span = page.WrittenSpan;
        for (int pos = 0; pos < span.Length;)
        {
            int len = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
            decoded.Add(Convert.ToHexString(span.Slice(pos + 4, len)));
            pos += 4 + len;
        }

        Assert.That(decoded, Is.EqualTo(distinct));
        dict.Release();
    }
}
