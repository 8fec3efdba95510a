using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Writing;

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
}
