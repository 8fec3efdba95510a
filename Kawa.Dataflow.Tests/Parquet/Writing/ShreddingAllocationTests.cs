#pragma warning disable CA1720 // The model names each column after its .NET type.
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

/// <summary>
/// Typed shredding moves value-type properties into the column buffers without boxing: once the writer's pooled
/// buffers are warm, writing more rows allocates nothing more per row.
/// </summary>
public class ShreddingAllocationTests
{
    public sealed class ValueRow
    {
        public int Int { get; init; }

        public long Long { get; init; }

        public double Double { get; init; }

        public bool Bool { get; init; }

        public DateTime At { get; init; }

        public Guid Uuid { get; init; }

        public decimal Dec { get; init; }

        [ParquetDecimal(18, 4)]
        public decimal Dec18 { get; init; }

        public int? IntN { get; init; }

        public long? LongN { get; init; }

        public double? DoubleN { get; init; }

        public bool? BoolN { get; init; }

        public DateTime? AtN { get; init; }

        public Guid? UuidN { get; init; }

        public decimal? DecN { get; init; }
    }

    private const int ValuesPerRow = 15;

    private static ValueRow[] Batch(int count)
    {
        var random = new Random(17);
        var start = new DateTime(2025, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        return Enumerable.Range(0, count).Select(i => new ValueRow
        {
            Int = i % 10, Long = random.NextInt64(), Double = random.NextDouble(), Bool = i % 3 == 0, At = start.AddSeconds(i),
            Uuid = Guid.NewGuid(), Dec = i * 1.5m, Dec18 = i % 100 / 8m,
            IntN = i % 4 == 0 ? null : i, LongN = i % 5 == 0 ? null : i % 7, DoubleN = i % 6 == 0 ? null : i / 3.0,
            BoolN = i % 2 == 0 ? null : true, AtN = i % 3 == 0 ? null : start.AddTicks(i * 10), UuidN = i % 2 == 0 ? null : Guid.NewGuid(),
            DecN = i % 3 == 1 ? null : -i / 4m,
        }).ToArray();
    }

    /// <summary>Bytes allocated (by every thread) to write <paramref name="batches"/> copies of <paramref name="batch"/> as one file.</summary>
    private static long AllocatedToWrite(ValueRow[] batch, int batches, ParquetWriterOptions options)
    {
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var writer = new ParquetWriter<ValueRow>(Stream.Null, options, leaveOpen: true);
        for (int i = 0; i < batches; i++)
        {
            writer.WriteAsync(batch).AsTask().GetAwaiter().GetResult();
        }

        writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return GC.GetTotalAllocatedBytes(precise: true) - before;
    }

    [TestCase(1)]
    [TestCase(2)]
    public void WriteAsync_ValueTypeColumns_AllocationDoesNotGrowWithRowCount(int parallelism)
    {
        // Uncompressed, so only shredding and encoding are measured; the default row group size (122,880 rows)
        // gives the 200,000-row file one more row group than the 20,000-row one.
        var options = new ParquetWriterOptions { Compression = ParquetCompression.Uncompressed, MaxDegreeOfParallelism = parallelism };
        var batch = Batch(10_000);
        const int SmallRows = 20_000, LargeRows = 200_000;

        // Warm up: the largest buffers are rented once and come back from the pools afterwards.
        AllocatedToWrite(batch, LargeRows / batch.Length, options);
        AllocatedToWrite(batch, SmallRows / batch.Length, options);

        // Pool misses on pool threads (parallel encoding) only ever add bytes: the least of a few runs is the writer's own.
        long small = Enumerable.Range(0, 5).Min(_ => AllocatedToWrite(batch, SmallRows / batch.Length, options));
        long large = Enumerable.Range(0, 5).Min(_ => AllocatedToWrite(batch, LargeRows / batch.Length, options));

        double perRow = (large - small) / (double)(LargeRows - SmallRows);
        TestContext.Out.WriteLine($"parallelism {parallelism}: {SmallRows} rows {small} B, {LargeRows} rows {large} B, {perRow:F3} B per extra row");

        // Boxing would cost about 24 B per value, {ValuesPerRow} values a row; shredding must allocate nothing per row.
        // The count is process-wide, so whatever other threads allocate meanwhile (timers and connections that earlier
        // tests left winding down) lands mostly on the longer run: CI once saw 1.5 B per row from that alone. Any real
        // per-row allocation is at least one 24-byte object per few rows, far above the bound.
        Assert.That(perRow, Is.LessThan(4.0), $"{perRow:F3} B per row (boxing every value would be ~{24 * ValuesPerRow} B)");
    }
}
