using Kawa.Dataflow.Tests.Core.Pipeline;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Tests.Core.Hosting;

public class PipelineHostingTests
{
    private static HostApplicationBuilder CreateBuilder(Dictionary<string, string?> configuration)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(configuration);
        return builder;
    }

    [Test]
    public void DefaultDrainTimeout_BelowTheGenericHostsDefaultShutdownTimeout()
    {
        // The host stops waiting for hosted services at its shutdown timeout; a drain that may take longer would be cut off.
        var hostShutdown = new HostOptions().ShutdownTimeout;

        Assert.That(new PipelineOptions().DrainTimeout, Is.EqualTo(PipelineOptions.DefaultDrainTimeout));
        Assert.That(PipelineOptions.DefaultDrainTimeout, Is.LessThan(hostShutdown));
        Assert.That(hostShutdown, Is.EqualTo(TimeSpan.FromSeconds(30)), "the documented figure the default is chosen against");
    }

    [Test]
    public async Task AddKawaPipeline_HostStops_DrainsInFlightWorkAcksAllFlushesThenStops()
    {
        var source = new TestSource<int>(TestMessages.Ints(5), endless: true);
        var destination = new RecordingDestination<int>();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var allInFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = 0;
        var builder = CreateBuilder(new() { ["Kawa:Pipelines:hosted-drain:MaxInFlightMessages"] = "7" });
        builder.Services.AddKawaPipeline("hosted-drain", (_, p) => p
            .From(source)
            .Handle<int>(
                "slow",
                async (m, _) =>
                {
                    if (Interlocked.Increment(ref entered) == 5)
                    {
                        allInFlight.TrySetResult();
                    }

                    await gate.Task;
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = 5, EnsureOrdered = false })
            .To(destination));
        using var host = builder.Build();

        await host.StartAsync();
        await allInFlight.Task.WaitAsync(TestMessages.Generous);
        var service = host.Services.GetServices<IHostedService>().OfType<PipelineHostedService>().Single();
        Assert.That(service.Pipeline!.MaxUnsettledMessages, Is.EqualTo(7), "options bound from configuration");

        var stopping = host.StopAsync();
        await source.ReceiveCancelled.WaitAsync(TestMessages.Generous);
        Assert.That(stopping.IsCompleted, Is.False, "the host stopped before in-flight work finished");
        gate.SetResult();
        await stopping.WaitAsync(TestMessages.Generous);

        Assert.That(service.ExecuteTask!.IsCompletedSuccessfully, Is.True);
        Assert.That(destination.Written, Has.Count.EqualTo(5));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
        Assert.That(destination.Flushes, Is.EqualTo(1));
    }

    [Test]
    public async Task AddKawaPipeline_InvalidConfiguration_HostStartFailsNamingEveryProperty()
    {
        var builder = CreateBuilder(new()
        {
            ["Kawa:Pipelines:hosted-invalid:MaxInFlightMessages"] = "0",
            ["Kawa:Pipelines:hosted-invalid:SegmentSize"] = "100000",
        });
        builder.Services.AddKawaPipeline("hosted-invalid", (_, p) => p.From(new TestSource<int>([])).To(new RecordingDestination<int>()));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(error!.Message, Does.Contain("MaxInFlightMessages").And.Contain("SegmentSize").And.Contain("hosted-invalid"));
    }

    [Test]
    public async Task AddKawaPipeline_TwoPipelines_BothRun()
    {
        var first = new RecordingDestination<int>();
        var second = new RecordingDestination<int>();
        var builder = CreateBuilder([]);
        builder.Services.AddKawaPipeline("hosted-one", (_, p) => p.From(new TestSource<int>(TestMessages.Ints(3))).To(first));
        builder.Services.AddKawaPipeline("hosted-two", (_, p) => p.From(new TestSource<int>(TestMessages.Ints(4))).To(second));
        using var host = builder.Build();

        await host.StartAsync();
        var services = host.Services.GetServices<IHostedService>().OfType<PipelineHostedService>().ToArray();
        await Task.WhenAll(services.Select(s => s.ExecuteTask!)).WaitAsync(TestMessages.Generous);
        await host.StopAsync();

        Assert.That(services, Has.Length.EqualTo(2));
        Assert.That(first.Written, Has.Count.EqualTo(3));
        Assert.That(second.Written, Has.Count.EqualTo(4));
    }
}
