using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

public class WriterBehaviourTests
{
    public sealed record Money([property: ParquetDecimal(6, 2)] decimal Amount, string Name, List<string> Tags);

    public sealed record Plain(int Id, string? Name);

    [Test]
    public async Task WriteAsync_DecimalTooManyIntegerDigits_ThrowsAndKeepsNothingOfTheBatch()
    {
        using var dir = new TempDir();
        var path = dir.File("m.parquet");
        await using (var writer = new ParquetWriter<Money>(File.Create(path)))
        {
            await writer.WriteAsync([new Money(1.25m, "ok", ["a"])]);

            var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () =>
                await writer.WriteAsync([new Money(2m, "kept?", ["b", "c"]), new Money(10000.00m, "too big", [])]));

            Assert.That(ex!.Message, Does.Contain("Amount").And.Contain("DECIMAL(6, 2)").And.Contain("Row 1"));
            Assert.That(writer.RowCount, Is.EqualTo(1));
            await writer.WriteAsync([new Money(3.5m, "after", [])]);
        }

        await using var reader = await ParquetReader.OpenAsync(path);
        var rows = await reader.ReadAllAsync<Money>();
        Assert.That(rows.Select(r => (r.Amount, r.Name, r.Tags.Count)), Is.EqualTo(new[] { (1.25m, "ok", 1), (3.5m, "after", 0) }));
    }

    [Test]
    public async Task WriteAsync_DecimalTooManyFractionalDigits_ThrowsInsteadOfRounding()
    {
        await using var writer = new ParquetWriter<Money>(new MemoryStream());

        var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([new Money(1.005m, "x", [])]));

        Assert.That(ex!.Message, Does.Contain("fractional digits").And.Contain("not rounded"));
    }

    [Test]
    public async Task WriteAsync_NullInNonNullableReference_ThrowsNamingColumn()
    {
        await using var writer = new ParquetWriter<Money>(new MemoryStream());

        var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([new Money(1m, null!, [])]));

        Assert.That(ex!.Message, Does.Contain("Money.Name").And.Contain("not nullable"));
        Assert.That(writer.RowCount, Is.Zero);
    }

    [Test]
    public void Constructor_Zstd_ThrowsNotSupportedNamingZstd()
    {
        var ex = Assert.Throws<NotSupportedException>(() => _ = new ParquetWriter<Plain>(new MemoryStream(), new ParquetWriterOptions { Compression = ParquetCompression.Zstd }));

        Assert.That(ex!.Message, Does.Contain("ZSTD"));
    }

    [Test]
    public void Validate_SeveralBadSettings_ReportsAllAtOnce()
    {
        var options = new ParquetWriterOptions { RowGroupMaxRows = 0, PageSize = 10, DictionaryMaxBytes = -1 };

        var ex = Assert.Throws<ArgumentException>(options.Validate);

        Assert.That(ex!.Message, Does.Contain("RowGroupMaxRows").And.Contain("PageSize").And.Contain("DictionaryMaxBytes"));
    }

    [Test]
    public async Task PositionAndEstimatedSize_GrowAsRowsAreWrittenAndFlushed()
    {
        var stream = new MemoryStream();
        await using var writer = new ParquetWriter<Plain>(stream, leaveOpen: true);

        await writer.WriteAsync(Enumerable.Range(0, 1000).Select(i => new Plain(i, "n" + i)).ToList());
        long buffered = writer.EstimatedSize;
        Assert.That(writer.Position, Is.Zero, "nothing is written before the first row group");
        Assert.That(buffered, Is.GreaterThan(1000));

        await writer.FlushRowGroupAsync();
        Assert.That(writer.Position, Is.EqualTo(stream.Length).And.GreaterThan(4));
        Assert.That(writer.RowGroupCount, Is.EqualTo(1));

        await writer.CompleteAsync();
        Assert.That(writer.Position, Is.EqualTo(stream.Length));
        Assert.That(stream.ToArray()[^4..], Is.EqualTo("PAR1"u8.ToArray()));
    }

    [Test]
    public async Task RowGroupMaxBytes_SmallLimit_SplitsIntoSeveralRowGroups()
    {
        using var dir = new TempDir();
        var rows = Enumerable.Range(0, 5000).Select(i => new Plain(i, new string('x', 100) + i)).ToList();
        var path = await RoundTripTests.WriteAsync(dir, rows, new ParquetWriterOptions { RowGroupMaxBytes = 100_000 }, batch: 500);

        await using var reader = await ParquetReader.OpenAsync(path);

        Assert.That(reader.RowGroups, Has.Count.GreaterThan(3));
        Assert.That(reader.RowCount, Is.EqualTo(5000));
        Assert.That((await reader.ReadAllAsync<Plain>()).Select(r => r.Id), Is.EqualTo(Enumerable.Range(0, 5000)));
    }

    [Test]
    public async Task MaxDegreeOfParallelism_SerialAndParallel_WriteIdenticalBytes()
    {
        // Several row groups large enough to be encoded in parallel (dictionary, PLAIN, nulls, nesting, every type).
        var rows = TestRows.AllTypes(20_000);
        async Task<byte[]> WriteAsync(int parallelism)
        {
            var stream = new MemoryStream();
            var options = new ParquetWriterOptions { MaxDegreeOfParallelism = parallelism, RowGroupMaxRows = 8_000 };
            await using (var writer = new ParquetWriter<AllTypes>(stream, options, leaveOpen: true))
            {
                await writer.WriteAsync(rows);
                await writer.WriteAsync(rows);
            }

            return stream.ToArray();
        }

        var serial = await WriteAsync(1);
        var parallel = await WriteAsync(4);

        Assert.That(parallel, Is.EqualTo(serial));
        using var dir = new TempDir();
        var path = dir.File("p.parquet");
        await File.WriteAllBytesAsync(path, parallel);
        await using var reader = await ParquetReader.OpenAsync(path);
        Assert.That(reader.RowGroups, Has.Count.EqualTo(2), "a batch is never split: two batches, two row groups");
        var back = await reader.ReadAllAsync<AllTypes>();
        Assert.That(back.Select(r => r.Id), Is.EqualTo(rows.Select(r => r.Id).Concat(rows.Select(r => r.Id))));
    }

    [TestCase(ParquetCompression.Snappy)]
    [TestCase(ParquetCompression.Uncompressed)]
    public async Task DataPageVersion_V2_OurReaderReadsTheSameRowsAsFromV1(ParquetCompression codec)
    {
        using var dir = new TempDir();
        var flat = TestRows.AllTypes(3000);
        var nested = TestRows.Nested();
        var v1 = new ParquetWriterOptions { Compression = codec, PageSize = 2048 };
        var v2 = new ParquetWriterOptions { Compression = codec, PageSize = 2048, DataPageVersion = ParquetDataPageVersion.V2 };

        var flat1 = await RoundTripTests.WriteAsync(dir, flat, v1, "flat1.parquet", batch: 1000);
        var flat2 = await RoundTripTests.WriteAsync(dir, flat, v2, "flat2.parquet", batch: 1000);
        var nested1 = await RoundTripTests.WriteAsync(dir, nested, v1, "nested1.parquet");
        var nested2 = await RoundTripTests.WriteAsync(dir, nested, v2, "nested2.parquet");

        Assert.That(await File.ReadAllBytesAsync(flat2), Is.Not.EqualTo(await File.ReadAllBytesAsync(flat1)), "the option changes the page layout");
        Assert.That(await ReadRowsAsync(flat2), Is.EqualTo(await ReadRowsAsync(flat1)));
        Assert.That(await ReadRowsAsync(nested2), Is.EqualTo(await ReadRowsAsync(nested1)));
    }

    private static readonly System.Text.Json.JsonSerializerOptions RowJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private static async Task<List<string>> ReadRowsAsync(string path)
    {
        await using var reader = await ParquetReader.OpenAsync(path);
        var rows = new List<string>();
        await foreach (var row in reader.ReadRowsAsync())
        {
            rows.Add(System.Text.Json.JsonSerializer.Serialize(row, RowJson));
        }

        return rows;
    }

    [Test]
    public async Task WriteAsync_RowGroupWrittenInTheBackgroundFails_LaterCallsThrowTheStreamError()
    {
        // Row groups that fill up during WriteAsync are written on the thread pool; a failed write must not vanish.
        var rows = TestRows.AllTypes(20_000);
        var stream = new FailingStream(failAfterBytes: 4096);
        var writer = new ParquetWriter<AllTypes>(stream, new ParquetWriterOptions { MaxDegreeOfParallelism = 2, RowGroupMaxRows = 8_000 }, leaveOpen: true);

        await writer.WriteAsync(rows); // fills a row group: its write starts in the background
        var error = await Assert.ThrowsAsync<IOException>(async () => await writer.CompleteAsync());

        Assert.That(error!.Message, Does.Contain("disk full (test)"));
        await Assert.ThrowsAsync<IOException>(async () => await writer.FlushRowGroupAsync(), "the writer stays failed");
    }

    private sealed class FailingStream(long failAfterBytes) : MemoryStream
    {
        // Every write ends in the array overload: MemoryStream's span overload, in a derived type, goes through
        // Stream.Write(span), which calls the array overload again (a span-to-base call here would recurse forever).
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > failAfterBytes)
            {
                throw new IOException("disk full (test)");
            }

            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer) => Write(buffer.ToArray(), 0, buffer.Length);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }
    }

    [Test]
    public void Validate_ZeroParallelism_NamesTheSetting()
    {
        var ex = Assert.Throws<ArgumentException>(new ParquetWriterOptions { MaxDegreeOfParallelism = 0 }.Validate);

        Assert.That(ex!.Message, Does.Contain("MaxDegreeOfParallelism"));
    }

    [Test]
    public async Task KeyValueMetadataAndCreatedBy_WrittenToFooter()
    {
        using var dir = new TempDir();
        var options = new ParquetWriterOptions();
        options.KeyValueMetadata["source"] = "kawa";
        var path = await RoundTripTests.WriteAsync(dir, [new Plain(1, "a")], options);

        await using var reader = await ParquetReader.OpenAsync(path);
        var duck = DuckDb.Query($"SELECT created_by FROM parquet_file_metadata({DuckDb.Lit(path)})");
        var kv = DuckDb.Query($"SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata({DuckDb.Lit(path)})");

        Assert.That(reader.KeyValueMetadata["source"], Is.EqualTo("kawa"));
        Assert.That(reader.CreatedBy, Does.StartWith("Kawa.Dataflow.Parquet version "));
        Assert.That(reader.HasTypeDefinedColumnOrders, Is.True);
        Assert.That(duck.Str(0, "created_by"), Is.EqualTo(reader.CreatedBy));
        Assert.That((kv.Str(0, "k"), kv.Str(0, "v")), Is.EqualTo(("source", "kawa")));
    }

    [Test]
    public async Task ParquetRowWriter_DynamicSchema_DuckDbReadsValues()
    {
        using var dir = new TempDir();
        var path = dir.File("dyn.parquet");
        var schema = new ParquetSchemaBuilder()
            .Add("id", ParquetValueType.Int64, nullable: false)
            .Add("name", ParquetValueType.String)
            .Add("at", ParquetValueType.Timestamp)
            .AddDecimal("price", 10, 3)
            .Add("ok", ParquetValueType.Boolean)
            .Build();
        await using (var writer = new ParquetRowWriter(File.Create(path), schema))
        {
            await writer.WriteAsync([
                [1L, "a", new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc), 1.5m, true],
                [2L, null, new DateTimeOffset(2024, 1, 1, 2, 0, 0, TimeSpan.FromHours(2)), null, null],
            ]);
        }

        var r = DuckDb.Query($"SELECT id, name, epoch_us(\"at\")::VARCHAR AS ts, price::VARCHAR AS price, ok FROM read_parquet({DuckDb.Lit(path)}) ORDER BY id");
        await using var reader = await ParquetReader.OpenAsync(path);
        var rows = new List<object?[]>();
        await foreach (var row in reader.ReadRowsAsync()) rows.Add(row);

        Assert.That(r.Rows.Select(x => x.Select(c => c.ToString()).ToArray()), Is.EqualTo(new[]
        {
            new[] { "1", "a", "1704067200000000", "1.500", "True" },
            new[] { "2", "", "1704067200000000", "", "" },
        }));
        Assert.That(rows[0], Is.EqualTo(new object?[] { 1L, "a", new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc), 1.5m, true }));
        Assert.That(rows[1], Is.EqualTo(new object?[] { 2L, null, new DateTime(2024, 1, 1, 0, 0, 0, DateTimeKind.Utc), null, null }));
    }

    [Test]
    public async Task ParquetRowWriter_WrongValueType_ThrowsNamingColumnAndKeepsNothing()
    {
        var schema = new ParquetSchemaBuilder().Add("id", ParquetValueType.Int64, nullable: false).Add("name", ParquetValueType.String).Build();
        await using var writer = new ParquetRowWriter(new MemoryStream(), schema);

        var ex = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([[1L, "a"], [2, "b"]]));
        var ex2 = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([[null, "a"]]));
        var ex3 = await Assert.ThrowsAsync<ParquetWriteException>(async () => await writer.WriteAsync([[1L]]));

        Assert.That(ex!.Message, Does.Contain("id").And.Contain("Int64").And.Contain("Int32"));
        Assert.That(ex2!.Message, Does.Contain("id").And.Contain("not nullable"));
        Assert.That(ex3!.Message, Does.Contain("2 columns"));
        Assert.That(writer.RowCount, Is.Zero);
    }
}
