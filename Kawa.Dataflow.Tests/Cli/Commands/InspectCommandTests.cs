using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Parquet.Schema;
using Kawa.Dataflow.Parquet.Writing;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa inspect</c> as a real child process, on files written by our ParquetWriter.</summary>
public class InspectCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-inspect-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static async Task WriteAsync(string path, int rows, int firstStatus)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var schema = new ParquetSchemaBuilder()
            .Add("ts", ParquetValueType.Timestamp, nullable: false)
            .Add("path", ParquetValueType.String)
            .Add("status", ParquetValueType.Int64, nullable: false)
            .Build();
        await using var stream = File.Create(path);
        await using var writer = new ParquetRowWriter(stream, schema, new ParquetWriterOptions { Compression = ParquetCompression.Gzip });
        var batch = Enumerable.Range(0, rows)
            .Select(i => new object?[] { new DateTime(2026, 5, 17, 0, 0, i, DateTimeKind.Utc), i == 0 ? null : $"/p{i}", (long)(i == 0 ? firstStatus : 200) })
            .ToArray();
        await writer.WriteAsync(batch);
    }

    [Test]
    public async Task Inspect_File_PrintsSchemaRowsRowGroupsCodecAndFirstRows()
    {
        var file = Path.Combine(_dir, "a.parquet");
        await WriteAsync(file, 7, 404);

        var result = await KawaProcess.RunAsync(_dir, null, "inspect", file, "--rows", "2");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stdout, Does.Contain("a.parquet: 7 rows, 1 row group(s)").And.Contain("codec GZIP"));
        Assert.That(result.Stdout, Does.Contain("ts: Timestamp").And.Contain("path: String?").And.Contain("status: Int64"));
        Assert.That(result.Stdout, Does.Contain("2026-05-17T00:00:00Z").And.Contain("404").And.Contain("/p1"));
        Assert.That(result.Stdout, Does.Not.Contain("/p2"), "--rows 2 shows two rows");
    }

    [Test]
    public async Task Inspect_FileAsJson_ReportsSizeSchemaRowGroupsCodecAndFirstRows()
    {
        var file = Path.Combine(_dir, "a.parquet");
        await WriteAsync(file, 4, 301);

        var result = await KawaProcess.RunAsync(_dir, null, "inspect", file, "--json", "--rows", "1");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        var size = new FileInfo(file).Length;
        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("files").GetInt32(), Is.EqualTo(1));
            Assert.That(json.GetProperty("rows").GetInt64(), Is.EqualTo(4));
            Assert.That(json.GetProperty("bytes").GetInt64(), Is.EqualTo(size));
            var details = json.GetProperty("fileDetails");
            Assert.That(details.GetArrayLength(), Is.EqualTo(1));
            var only = details[0];
            Assert.That(only.GetProperty("bytes").GetInt64(), Is.EqualTo(size));
            Assert.That(only.GetProperty("codecs")[0].GetString(), Is.EqualTo("GZIP"));
            Assert.That(only.GetProperty("schema").EnumerateArray().Select(f => f.GetString()).ToArray(),
                Has.Length.EqualTo(3).And.Some.StartsWith("ts").And.Some.StartsWith("path").And.Some.StartsWith("status"));
            Assert.That(only.GetProperty("rowGroups").GetArrayLength(), Is.EqualTo(1));
            Assert.That(only.GetProperty("rowGroups")[0].GetProperty("rows").GetInt64(), Is.EqualTo(4));
            Assert.That(only.GetProperty("firstRows").GetArrayLength(), Is.EqualTo(1), "--rows 1");
            Assert.That(only.GetProperty("firstRows")[0].GetProperty("status").GetInt64(), Is.EqualTo(301));
        });
    }

    [Test]
    public async Task Inspect_LakeDirectoryAsJson_ReportsEveryFilePartitionsAndTopValues()
    {
        await WriteAsync(Path.Combine(_dir, "dt=2026-05-17", "a.parquet"), 5, 404);
        await WriteAsync(Path.Combine(_dir, "dt=2026-05-18", "b.parquet"), 3, 500);
        File.WriteAllText(Path.Combine(_dir, "dt=2026-05-18", ".b2.parquet.tmp"), "being written");

        var result = await KawaProcess.RunAsync(_dir, null, "inspect", _dir, "--json", "--top", "status");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Multiple(() =>
        {
            Assert.That(json.GetProperty("files").GetInt32(), Is.EqualTo(2));
            Assert.That(json.GetProperty("rows").GetInt64(), Is.EqualTo(8));
            Assert.That(json.GetProperty("partitions").GetProperty("dt=2026-05-17").GetInt64(), Is.EqualTo(5));
            Assert.That(json.GetProperty("partitions").GetProperty("dt=2026-05-18").GetInt64(), Is.EqualTo(3));
            Assert.That(json.GetProperty("top").GetProperty("200").GetInt64(), Is.EqualTo(6));
            Assert.That(json.GetProperty("top").GetProperty("404").GetInt64(), Is.EqualTo(1));
            var first = json.GetProperty("fileDetails")[0];
            Assert.That(first.GetProperty("codecs")[0].GetString(), Is.EqualTo("GZIP"));
            Assert.That(first.GetProperty("rowGroups")[0].GetProperty("rows").GetInt64(), Is.EqualTo(5));
            Assert.That(first.GetProperty("firstRows")[0].GetProperty("status").GetInt64(), Is.EqualTo(404));
            Assert.That(first.GetProperty("firstRows")[0].GetProperty("path").ValueKind, Is.EqualTo(JsonValueKind.Null));
        });
    }

    [Test]
    public async Task Inspect_NotParquet_ExitsRuntimeFailureNamingTheFile()
    {
        var file = Path.Combine(_dir, "bad.parquet");
        File.WriteAllText(file, "not parquet at all");

        var result = await KawaProcess.RunAsync(_dir, null, "inspect", file);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.RuntimeFailure));
        Assert.That(result.Stderr, Does.Contain("bad.parquet: not a readable Parquet file"));
    }

    [Test]
    public async Task Inspect_MissingPath_ExitsConfigInvalid()
    {
        var result = await KawaProcess.RunAsync(_dir, null, "inspect", Path.Combine(_dir, "nothing"));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(result.Stderr, Does.Contain("does not exist"));
    }
}
