using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Writing;
using Kawa.Dataflow.Tests.Parquet.Lake;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

public class ParquetDestinationOptionsTests
{
    [Test]
    public void RowGroupMaxRows_Default_IsTheWritersDefault()
    {
        // docs/parquet.md argues for the writer's row-group size; the sink hands its own to the writer of every file,
        // so a different default would quietly overrule that choice for every lake.
        var sink = new ParquetDestinationOptions<object>();

        Assert.That(sink.RowGroupMaxRows, Is.EqualTo(new ParquetWriterOptions().RowGroupMaxRows));
        Assert.That(sink.WriterOptions().RowGroupMaxRows, Is.EqualTo(122_880));
    }

    [Test]
    public void Validate_BudgetBelowTheLocalWriteBuffer_RefusedNamingBoth()
    {
        // Every open file's write buffer counts in the budget: a budget below one buffer would commit a file per batch.
        using var root = new TempDirectory();
        var options = new ParquetDestinationOptions<SinkEvent> { Storage = Storage(root, bufferSize: 64 * 1024), MemoryBudgetBytes = 32 * 1024 };

        Assert.That(options.Validate(), Has.One.Contains("MemoryBudgetBytes (32768) must be at least the local storage's BufferSize (65536)"));
        options.Storage = Storage(root, bufferSize: 0);
        Assert.That(options.Validate(), Has.None.Contains("BufferSize"));
    }
}
