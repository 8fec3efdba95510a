using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Parquet.Writing;

public class SmokeTests
{
    public sealed record Row(int Id, string? Name, double Score, List<int?>? Tags);

    [Test]
    public async Task WriteAsync_SimpleRows_DuckDbReadsThem()
    {
        using var dir = new TempDir();
        var path = dir.File("a.parquet");
        await using (var w = new ParquetWriter<Row>(File.Create(path)))
        {
            await w.WriteAsync([new Row(1, "a", 1.5, [1, null, 3]), new Row(2, null, -0.0, null), new Row(3, "ccc", double.NaN, [])]);
        }

        var r = DuckDb.Query($"select * from read_parquet({DuckDb.Lit(path)}) order by Id");
        TestContext.Out.WriteLine(string.Join("\n", r.Rows.Select(x => string.Join(" | ", x.Select(c => c.GetRawText())))));
        Assert.That(r.Rows, Has.Length.EqualTo(3));
    }
}
