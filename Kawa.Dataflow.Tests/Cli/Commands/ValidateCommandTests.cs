using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Cli.Configuration;

namespace Kawa.Dataflow.Tests.Cli.Commands;

public class ValidateCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-cli-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private static IEnumerable<string> Examples() =>
        Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "examples"), "*.json").Select(Path.GetFileName).Order()!;

    [Test]
    public void Examples_AllShipped()
    {
        Assert.That(Examples(), Is.EquivalentTo(new[] { "access-log-to-parquet.json", "access-log-to-stdout.json", "dead-letter.json", "jetstream-access-log-to-lake.json", "jetstream-to-jetstream.json", "jetstream-to-parquet.json" }));
    }

    [TestCaseSource(nameof(Examples))]
    public void Example_Validates(string example)
    {
        var result = ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot, "examples", example), useEnvironment: false, baseDirectory: TestPaths.RepoRoot);

        Assert.That(result.Errors.Select(e => e.ToString()), Is.Empty);
        Assert.That(result.Warnings.Select(e => e.ToString()), Is.Empty, "examples show good practice");
    }

    [Test]
    public async Task ValidateProcess_EveryExample_ExitsOkFromRepoRoot()
    {
        foreach (var example in Examples())
        {
            var result = await KawaProcess.RunAsync(TestPaths.RepoRoot, null, "validate", "--config", Path.Combine("examples", example));

            Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), $"{example}: {result.Stderr}");
            Assert.That(result.Stdout, Does.Contain($"{example}: valid"));
        }
    }

    [Test]
    public async Task ValidateProcess_InvalidConfig_ExitsConfigInvalidListingEveryErrorWithSecretsMasked()
    {
        var config = Path.Combine(_dir, "bad.json");
        File.WriteAllText(config, """
            {
              "pipeline": {
                "name": "bad",
                "source": { "type": "nats-jetstream", "servers": [ "nats://alice:pw-SECRET-1@127.0.0.1:4222" ], "stream": "S", "durable": "d",
                            "auth": { "token": "tok-SECRET-2", "user": "alice", "password": "pw-SECRET-1" } },
                "handlers": [ { "type": "parse", "format": "combined", "paralelism": 2 }, { "type": "filter", "conditions": [] } ],
                "destination": { "type": "parquet", "path": "./lake", "partitionBy": "dt={tss:yyyy-MM-dd}", "rollAge": "00:03:00" }
              }
            }
            """);
        var env = new Dictionary<string, string> { ["KAWA_PIPELINE__DESTINATION__S3__SECRETKEY"] = "aws-SECRET-3" };

        var result = await KawaProcess.RunAsync(_dir, env, "validate", "--config", config, "--print", "--set", "pipeline.source.auth.nkey=SUSECRET-4");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(result.Stderr, Does.Contain("bad.json: invalid configuration, 7 errors:"));
        Assert.That(result.Stderr, Does.Contain("  pipeline.handlers[0].paralelism: unknown key (did you mean 'parallelism'?)"));
        Assert.That(result.Stderr, Does.Contain("  pipeline.handlers[1].conditions: missing required value (at least one condition)"));
        Assert.That(result.Stderr, Does.Contain("  pipeline.destination.partitionBy: unknown field 'tss' (did you mean 'ts'?)"));
        Assert.That(result.Stderr, Does.Contain("  pipeline.destination.rollAge: must be below pipeline.source.ackWait (00:02:00)"));
        Assert.That(result.Stderr, Does.Contain("  pipeline.source.auth: give one authentication method, got token and user/password and nkey"));
        Assert.That(result.Stdout, Does.Contain("\"nats://alice:***@127.0.0.1:4222\"").And.Contain("\"token\": \"***\""));
        foreach (var secret in new[] { "pw-SECRET-1", "tok-SECRET-2", "aws-SECRET-3", "SUSECRET-4" })
        {
            Assert.That(result.Stdout + result.Stderr, Does.Not.Contain(secret));
        }
    }

    [Test]
    public async Task ValidateProcess_JsonSyntaxError_ReportsLineAndColumn()
    {
        var config = Path.Combine(_dir, "broken.json");
        File.WriteAllText(config, "{\n  \"pipeline\": {\n    \"name\": \"x\",,\n  }\n}\n");

        var result = await KawaProcess.RunAsync(_dir, null, "validate", "--config", config);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(result.Stderr, Does.Contain($"{config}:3:17: invalid JSON:"));
    }

    [Test]
    public async Task Process_UsageErrors_ExitUsage()
    {
        var noConfig = await KawaProcess.RunAsync(_dir, null, "validate");
        var unknown = await KawaProcess.RunAsync(_dir, null, "frobnicate");

        Assert.That(noConfig.ExitCode, Is.EqualTo(ExitCodes.Usage));
        Assert.That(noConfig.Stderr, Does.Contain("--config"));
        Assert.That(unknown.ExitCode, Is.EqualTo(ExitCodes.Usage));
        Assert.That(unknown.Stderr, Does.Contain("frobnicate"));
    }

    [Test]
    public async Task Process_MissingConfigFile_ExitsConfigInvalid()
    {
        var result = await KawaProcess.RunAsync(_dir, null, "validate", "--config", "nope.json");

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(result.Stderr, Does.Contain("cannot read the configuration file: file not found"));
    }

    [Test]
    public void Run_ValidConfigWithUnreachableServer_ExitsConnectionFailureButInvalidConfigExitsConfigInvalidFirst()
    {
        var bad = Path.Combine(_dir, "bad.json");
        File.WriteAllText(bad, "{ \"pipeline\": { } }");
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var good = Path.Combine(TestPaths.RepoRoot, "examples", "jetstream-to-jetstream.json");

        var nowhere = $"nats://127.0.0.1:{Kawa.Dataflow.Tests.Nats.Infrastructure.NatsServerProcess.FreePort()}";

        Assert.That(KawaCli.Run(["run", "--config", good, "--drain", "--set", "metrics.port=0", "--set", $"pipeline.source.servers[0]={nowhere}"], stdout, stderr), Is.EqualTo(ExitCodes.ConnectionFailure));
        Assert.That(KawaCli.Run(["run", "--config", bad], stdout, stderr), Is.EqualTo(ExitCodes.ConfigInvalid));
        Assert.That(stderr.ToString(), Does.Contain("pipeline.name: missing required value"));
    }

    [Test]
    public void ExitCodes_AreDistinct()
    {
        int[] codes = [ExitCodes.Ok, ExitCodes.RuntimeFailure, ExitCodes.Usage, ExitCodes.ConfigInvalid, ExitCodes.ConnectionFailure, ExitCodes.DrainTimeout, ExitCodes.NotAvailable, ExitCodes.Interrupted];

        Assert.That(codes, Is.Unique);
        Assert.That(codes, Is.EqualTo(new[] { 0, 1, 2, 3, 4, 5, 6, 130 }), "documented in docs/cli.md: changing one breaks scripts");
    }

    [Test]
    public void ExitCodes_DocsTable_ListsEveryCodeWithItsName()
    {
        var code = typeof(ExitCodes).GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Static)
            .ToDictionary(f => f.Name, f => (int)f.GetRawConstantValue()!);
        var docs = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "docs", "cli.md"));
        var table = System.Text.RegularExpressions.Regex.Matches(docs, @"^\| +(\d+) \| `(\w+)` \|", System.Text.RegularExpressions.RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[2].Value, m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));

        Assert.That(table, Is.EquivalentTo(code), "docs/cli.md's exit code table and ExitCodes.cs agree, name for name");
    }
}
