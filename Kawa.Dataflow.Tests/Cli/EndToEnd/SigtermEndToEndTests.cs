using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Tests.Cli.Commands;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.EndToEnd;

/// <summary>A graceful stop of a long-running <c>kawa run</c> (no <c>--drain</c>) with Parquet files still open.</summary>
[NonParallelizable]
public sealed class SigtermEndToEndTests
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-e2e-sigterm-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    [Test]
    public async Task Run_SigtermWithFilesOpen_CommitsThemAcksEverythingAndExitsOk()
    {
        var input = Path.Combine(_dir, "in.log");
        await File.WriteAllLinesAsync(input, File.ReadLines(TestPaths.AccessLog10k).Take(500));
        await using var server = await NatsServerProcess.StartAsync();
        await LakeJob.PublishAsync(_dir, server, "ACCESS", input);
        var lake = new Lake(Path.Combine(_dir, "lake"));
        // Files would stay open 10 minutes: only the stop can commit them.
        var config = LakeJob.WriteConfig(_dir, new LakeJobSettings(server.Url, lake.Root, Path.Combine(_dir, "dead"))
        {
            RollAge = TimeSpan.FromMinutes(10),
            AckWait = TimeSpan.FromMinutes(15),
        });
        await using var daemon = KawaDaemon.Start(_dir, "run", "--config", config);

        // Bounded polling of the server: every message delivered and held unacked in open files.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var info = await TryConsumerAsync(server);
            if (info is { NumPending: 0, NumAckPending: 500 })
            {
                break;
            }

            Assert.That(daemon.HasExited, Is.False, daemon.Stderr);
            Assert.That(DateTime.UtcNow, Is.LessThan(deadline), $"kawa did not take all 500 messages: {info?.NumPending} pending, {info?.NumAckPending} unacked");
            await Task.Delay(50);
        }

        Assert.That(lake.VisibleFiles(), Is.Empty, "nothing committed before the stop");
        await daemon.SignalAsync("TERM");
        var exit = await daemon.WaitForExitAsync();

        var consumer = await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
        var (rows, _) = await lake.TotalsAsync();
        Assert.Multiple(() =>
        {
            Assert.That(exit, Is.EqualTo(ExitCodes.Ok), daemon.Stderr);
            Assert.That(rows, Is.EqualTo(500), "the open files were committed");
            Assert.That(lake.OtherFiles(), Is.Empty, "no temporary file left");
            Assert.That((consumer.NumPending, consumer.NumAckPending), Is.EqualTo((0UL, 0L)), "and their messages acked");
            Assert.That(daemon.Stderr, Does.Contain("SIGTERM received: draining").And.Contain("500 received, 500 acked"));
        });
    }

    // kawa creates the durable consumer when it starts: until then there is none to ask about.
    private static async Task<Kawa.Dataflow.Nats.JetStream.ConsumerInfo?> TryConsumerAsync(NatsServerProcess server)
    {
        try
        {
            return await LakeJob.ConsumerAsync(server, "ACCESS", "e2e-lake");
        }
        catch (Kawa.Dataflow.Nats.JetStreamApiException ex) when (ex.ErrorCode == 10014)
        {
            return null;
        }
    }
}
