using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Commands;

/// <summary><c>kawa publish</c> as a real child process against a real nats-server.</summary>
public class PublishCommandTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-publish-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Publish_FileToExistingStream_StreamHoldsEveryLine()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] });
        await connection.ConnectAsync();
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "LOGS", Subjects = ["logs.>"], Storage = StorageType.File });
        var lines = File.ReadLines(TestPaths.AccessLog10k).Take(1000).ToArray();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, lines);

        var result = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "logs.access", "--window", "64", input);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        Assert.That(result.Stdout, Does.Contain("published 1,000 message(s) to 'logs.access' (stream LOGS"));
        Assert.That(result.Stdout, Does.Match(@"in \d+\.\d\d s \([\d,]+ msg/s\)"), "the rate is shown");
        var info = await js.GetStreamAsync("LOGS");
        Assert.That(info.State!.Messages, Is.EqualTo(1000));
    }

    [Test]
    public async Task Publish_CreateStream_CreatesItAndPublishes()
    {
        await using var server = await NatsServerProcess.StartAsync();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, ["a", "", "b", "c"]);

        var result = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "demo", "--create-stream", "DEMO", input);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Ok), result.Stderr);
        await using var connection = new NatsConnection(new NatsConnectionOptions { Servers = [server.Url] });
        await connection.ConnectAsync();
        var info = await new JetStreamContext(connection).GetStreamAsync("DEMO");
        Assert.That(info.State!.Messages, Is.EqualTo(3), "empty lines are not published");
    }

    [Test]
    public async Task Publish_NoStreamForSubject_ExitsConnectionFailureSayingSo()
    {
        await using var server = await NatsServerProcess.StartAsync();
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, ["a", "b"]);

        var result = await KawaProcess.RunAsync(_dir, null, "publish", "--url", server.Url, "--subject", "nowhere", input);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConnectionFailure));
        // How many lines went out before the first refusal came back depends on timing (publishes are pipelined);
        // what matters is that none is reported acked.
        Assert.That(result.Stderr, Does.Contain("no JetStream stream captures subject 'nowhere'").And.Match(@"\b0 of [12] line\(s\) sent were acked"));
    }

    [Test]
    public async Task Publish_ConnectionRefused_ExitsConnectionFailure()
    {
        var input = Path.Combine(_dir, "in.log");
        File.WriteAllLines(input, ["a"]);
        var url = $"nats://127.0.0.1:{NatsServerProcess.FreePort()}";

        var result = await KawaProcess.RunAsync(_dir, null, "publish", "--url", url, "--subject", "x", input);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.ConnectionFailure));
        Assert.That(result.Stderr, Does.Contain($"cannot connect to {url}"));
    }
}
