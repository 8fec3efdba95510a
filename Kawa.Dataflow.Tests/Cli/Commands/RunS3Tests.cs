using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Amazon.S3;
using Amazon.S3.Model;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Tests.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa run</c> as a real child process writing its Parquet lake to S3 (a local s3rver).</summary>
[NonParallelizable]
public sealed partial class RunS3Tests
{
    private const string Bucket = "lake";
    private S3rverFixture _s3 = null!;
    private AmazonS3Client _client = null!;
    private string _dir = null!;

    [SetUp]
    public async Task SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("kawa-run-s3-").FullName;
        _s3 = await S3rverFixture.StartAsync(Bucket);
        _client = _s3.CreateClient();
    }

    [TearDown]
    public async Task TearDown()
    {
        _client.Dispose();
        await _s3.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Test]
    public async Task Run_FileToS3Lake_EveryLineIsOneRowInItsUtcDayPartitionWithItsOwnFields()
    {
        var lines = File.ReadAllLines(TestPaths.AccessLog10k).Where(l => l.Length > 0).ToArray();
        var input = Path.Combine(_dir, "access.log");
        File.WriteAllLines(input, lines);
        var config = Path.Combine(_dir, "config.json");
        // No credentials in the file: they come from the environment, as docs/config.md recommends.
        File.WriteAllText(config, $$"""
            {
              "pipeline": {
                "name": "s3-lake",
                "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}} },
                "handlers": [ { "type": "parse", "format": "combined", "parallelism": 2 } ],
                "destination": {
                  "type": "parquet",
                  "path": "s3://{{Bucket}}/logs/web",
                  "s3": { "endpoint": {{JsonSerializer.Serialize(_s3.ServiceUrl)}}, "region": "us-east-1", "forcePathStyle": true },
                  "partitionBy": "dt={ts:yyyy-MM-dd}",
                  "columns": [
                    { "name": "line", "type": "long", "source": "$sequence", "nullable": false },
                    { "name": "host" },
                    { "name": "ts", "type": "timestamp", "nullable": false },
                    { "name": "status", "type": "long" },
                    { "name": "bytes", "type": "long" }
                  ],
                  "extraColumn": "_extra",
                  "rollRows": 2500,
                  "rollAge": "00:00:01"
                }
              },
              "metrics": { "port": 0 }
            }
            """);
        var environment = new Dictionary<string, string>
        {
            ["KAWA_PIPELINE__DESTINATION__S3__ACCESSKEY"] = "S3RVER",
            ["KAWA_PIPELINE__DESTINATION__S3__SECRETKEY"] = "S3RVER",
        };

        var result = await KawaProcess.RunAsync(_dir, environment, "run", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stderr, Does.Contain($"{lines.Length} received, {lines.Length} acked"));
        var keys = await ListAsync("logs/web/");
        Assert.That(keys, Is.Not.Empty);
        Assert.That(keys, Has.All.Match(@"^logs/web/dt=\d{4}-\d{2}-\d{2}/[^/]+\.parquet$"), "only committed Parquet files, under their partition");

        var rows = new Dictionary<long, (string Dt, object?[] Row)>();
        foreach (var key in keys)
        {
            var dt = key.Split('/')[2]["dt=".Length..];
            await using var reader = await ParquetReader.OpenAsync(new MemoryStream(await GetAsync(key)));
            Assert.That(reader.Schema.Fields.Select(f => f.Name), Is.EqualTo(new[] { "line", "host", "ts", "status", "bytes", "_extra" }), key);
            await foreach (var row in reader.ReadRowsAsync())
            {
                Assert.That(rows.TryAdd((long)row[0]!, (dt, row)), Is.True, $"line {row[0]} written once");
            }
        }

        Assert.That(rows, Has.Count.EqualTo(lines.Length), "every line is one row");
        Assert.Multiple(() =>
        {
            for (var i = 0; i < lines.Length; i++)
            {
                // Ground truth from the line itself, by a separate pattern (not the project's parser).
                var match = CombinedLine().Match(lines[i]);
                Assert.That(match.Success, Is.True, lines[i]);
                var ts = DateTimeOffset.ParseExact(match.Groups["ts"].Value, "dd/MMM/yyyy:HH:mm:ss zzz", CultureInfo.InvariantCulture).UtcDateTime;
                var (dt, row) = rows[i + 1];
                Assert.That(row[1], Is.EqualTo(match.Groups["host"].Value), $"line {i + 1} host");
                Assert.That(ToUtc(row[2]), Is.EqualTo(ts), $"line {i + 1} ts");
                Assert.That(row[3], Is.EqualTo(long.Parse(match.Groups["status"].Value, CultureInfo.InvariantCulture)), $"line {i + 1} status");
                Assert.That(row[4], Is.EqualTo(match.Groups["bytes"].Value == "-" ? 0L : long.Parse(match.Groups["bytes"].Value, CultureInfo.InvariantCulture)), $"line {i + 1} bytes");
                Assert.That(dt, Is.EqualTo(ts.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)), $"line {i + 1} partition (UTC day)");
                Assert.That((string)row[5]!, Does.Contain("\"path\":"), $"line {i + 1} keeps its unmapped fields in _extra");
            }
        });
    }

    [Test]
    public async Task Run_S3EndpointUnreachable_ExitsConnectionFailureWithoutPrintingTheSecret()
    {
        int closedPort;
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", TenLinesToS3($"http://127.0.0.1:{closedPort}", "S3RVER", "do-not-print-me"));

        AssertRefusedAtStart(result, "do-not-print-me");
    }

    [Test]
    public async Task Run_S3RefusesTheAccessKey_ExitsConnectionFailureWithoutPrintingTheSecret()
    {
        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", TenLinesToS3(_s3.ServiceUrl, "NOT-A-KEY", "do-not-print-me"));

        AssertRefusedAtStart(result, "do-not-print-me");
        Assert.That(await ListAsync(""), Is.Empty, "nothing written");
    }

    [Test]
    public async Task Run_S3BucketMissing_ExitsRuntimeFailureSayingToCheckTheBucket()
    {
        var config = TenLinesToS3(_s3.ServiceUrl, "S3RVER", "S3RVER");
        File.WriteAllText(config, File.ReadAllText(config).Replace($"s3://{Bucket}/logs", "s3://no-such-bucket/logs", StringComparison.Ordinal));

        var result = await KawaProcess.RunAsync(_dir, null, "run", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.RuntimeFailure), result.Stderr);
        Assert.That(result.Stderr, Does.Contain("s3://no-such-bucket/logs/").And.Contain("check that the bucket exists").And.Contain("Nothing was started"));
    }

    private static void AssertRefusedAtStart(KawaProcess.Result result, string secret) => Assert.Multiple(() =>
    {
        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConnectionFailure), result.Stderr);
        Assert.That(result.Stderr, Does.Contain("pipeline.destination").And.Contain("Nothing was started"));
        Assert.That(result.Stderr + result.Stdout, Does.Not.Contain(secret), "the secret is never printed");
    });

    private string TenLinesToS3(string endpoint, string accessKey, string secretKey)
    {
        var input = Path.Combine(_dir, "access.log");
        File.WriteAllLines(input, File.ReadLines(TestPaths.AccessLog10k).Take(10));
        var config = Path.Combine(_dir, "config.json");
        File.WriteAllText(config, $$"""
            {
              "pipeline": {
                "name": "s3-lake",
                "source": { "type": "file", "path": {{JsonSerializer.Serialize(input)}} },
                "destination": {
                  "type": "parquet", "path": "s3://{{Bucket}}/logs",
                  "s3": { "endpoint": {{JsonSerializer.Serialize(endpoint)}}, "region": "us-east-1", "forcePathStyle": true,
                          "accessKey": {{JsonSerializer.Serialize(accessKey)}}, "secretKey": {{JsonSerializer.Serialize(secretKey)}} },
                  "rollAge": "00:00:01"
                }
              },
              "metrics": { "port": 0 }
            }
            """);
        return config;
    }

    private static DateTime ToUtc(object? value) => value switch
    {
        DateTimeOffset o => o.UtcDateTime,
        DateTime d => d.Kind == DateTimeKind.Utc ? d : DateTime.SpecifyKind(d, DateTimeKind.Utc),
        _ => throw new AssertionException($"not a timestamp: {value} ({value?.GetType().Name})"),
    };

    private async Task<List<string>> ListAsync(string prefix)
    {
        var keys = new List<string>();
        var request = new ListObjectsV2Request { BucketName = Bucket, Prefix = prefix };
        ListObjectsV2Response response;
        do
        {
            response = await _client.ListObjectsV2Async(request);
            keys.AddRange((response.S3Objects ?? []).Select(o => o.Key));
            request.ContinuationToken = response.NextContinuationToken;
        }
        while (response.IsTruncated == true);

        return keys;
    }

    private async Task<byte[]> GetAsync(string key)
    {
        using var response = await _client.GetObjectAsync(Bucket, key);
        using var buffer = new MemoryStream();
        await response.ResponseStream.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    [GeneratedRegex("""^(?<host>\S+) \S+ \S+ \[(?<ts>[^\]]+)\] "(?:[^"\\]|\\.)*" (?<status>\d{3}) (?<bytes>\d+|-)""")]
    private static partial Regex CombinedLine();
}
