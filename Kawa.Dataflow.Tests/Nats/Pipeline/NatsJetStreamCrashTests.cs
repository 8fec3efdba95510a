using System.Diagnostics;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>A real crash: another process (the official nats.js client) takes messages from the shared durable and
/// is SIGKILLed holding them unacked; the pipeline gets them after the ack wait.</summary>
[NonParallelizable]
public class NatsJetStreamCrashTests : JetStreamTestBase
{
    private const string HolderScript = """
        import { pathToFileURL } from "node:url";
        const [modules, url, stream, durable, count] = process.argv.slice(2);
        const { connect } = await import(pathToFileURL(modules + "/@nats-io/transport-node/index.js").href);
        const { jetstream } = await import(pathToFileURL(modules + "/@nats-io/jetstream/lib/mod.js").href);
        const nc = await connect({ servers: url });
        const consumer = await jetstream(nc).consumers.get(stream, durable);
        const batch = await consumer.fetch({ max_messages: Number(count), expires: 10000 });
        let held = 0;
        for await (const m of batch) { if (++held === Number(count)) { console.log("HOLDING"); } }
        await new Promise(() => {});
        """;

    private static string NodeModules()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kawa.Dataflow.sln")))
        {
            dir = dir.Parent;
        }

        return Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repo root not found"), "tools", "node", "node_modules");
    }

    [Test]
    public async Task Pipeline_OtherConsumerProcessKilledHoldingMessages_TheyAreRedeliveredAndProcessed()
    {
        const int count = 50;
        const int held = 10;
        var stream = await StreamAsync(count);
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "shared", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(2), MaxAckPending = 1000 });
        var script = Path.Combine(Server.Directory, "holder.mjs");
        await File.WriteAllTextAsync(script, HolderScript);
        var psi = new ProcessStartInfo("node", [script, NodeModules(), Server.Url, stream, "shared", held.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var holder = Process.Start(psi)!;
        var errors = new System.Text.StringBuilder();
        holder.ErrorDataReceived += (_, e) => { lock (errors) { errors.AppendLine(e.Data); } };
        holder.BeginErrorReadLine();
        try
        {
            using var wait = new CancellationTokenSource(NatsTestHelpers.Generous);
            var line = await holder.StandardOutput.ReadLineAsync(wait.Token).AsTask().ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null);
            lock (errors)
            {
                Assert.That(line, Is.EqualTo("HOLDING"), errors.ToString());
            }
        }
        finally
        {
            holder.Kill(entireProcessTree: true); // SIGKILL: the held messages are never acked
            await holder.WaitForExitAsync();
        }

        await using var source = await SourceAsync(stream, o => { o.Durable = "shared"; o.CreateOrUpdate = false; });
        var destination = new RecordingDestination();
        await Kawa.Dataflow.Pipeline.Create("after-crash").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = 100 })
            .RunAsync().WaitAsync(TimeSpan.FromMinutes(1));

        Assert.That(destination.Seen.Select(s => s.Sequence).Distinct().Count(), Is.EqualTo(count), "nothing lost");
        Assert.That(destination.Seen, Has.Count.EqualTo(count), "each processed once here");
        Assert.That(destination.Seen.Count(s => s.Deliveries == 2), Is.EqualTo(held), "the killed process's messages came back as second deliveries");
        Assert.That((await ConsumerAsync(stream, "shared")).NumAckPending, Is.Zero);
    }
}
