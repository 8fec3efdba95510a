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
    public async Task AddKawaPipeline_MisspelledOption_HostStartFailsNamingTheKey()
    {
        var builder = CreateBuilder(new() { ["Kawa:Pipelines:hosted-typo:MaxInflightMessage"] = "10" });
        var source = new TestSource<int>(TestMessages.Ints(3));
        builder.Services.AddKawaPipeline("hosted-typo", (_, p) => p.From(source).To(new RecordingDestination<int>()));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(error!.Message, Does.Contain("hosted-typo").And.Contain("Kawa:Pipelines:hosted-typo").And.Contain("MaxInflightMessage"));
        Assert.That(source.Received, Is.Zero, "nothing is read when the configuration is wrong");
    }

    [Test]
    public async Task AddKawaPipeline_ValueThatDoesNotConvert_HostStartFailsNamingTheOption()
    {
        var builder = CreateBuilder(new() { ["Kawa:Pipelines:hosted-type:DrainTimeout"] = "soon" });
        builder.Services.AddKawaPipeline("hosted-type", (_, p) => p.From(new TestSource<int>([])).To(new RecordingDestination<int>()));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(error!.Message, Does.Contain("hosted-type").And.Contain("Kawa:Pipelines:hosted-type:DrainTimeout"));
    }

    [Test]
    public async Task AddKawaPipeline_InvalidStageDefinition_HostStartFailsNamingTheStageOption()
    {
        var source = new TestSource<int>(TestMessages.Ints(3));
        var builder = CreateBuilder([]);
        builder.Services.AddKawaPipeline("hosted-bad-stage", (_, p) => p
            .From(source)
            .Handle("parse", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 0 })
            .To(new RecordingDestination<int>()));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.That(error!.Message, Does.Contain("parse").And.Contain("MaxDegreeOfParallelism"));
        Assert.That(source.Received, Is.Zero);
    }

    [Test]
    public async Task AddKawaPipeline_FatalPipelineError_StopsTheHostWithTheStageError()
    {
        var source = new TestSource<int>(TestMessages.Ints(3), endless: true);
        var builder = CreateBuilder([]);
        builder.Services.AddKawaPipeline("hosted-fatal", (_, p) => p
            .From(source)
            .Handle<int>("explode", (_, _) => throw new InvalidDataException("bad record"))
            .To(new RecordingDestination<int>()));
        using var host = builder.Build();
        var stopping = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.Register(() => stopping.TrySetResult());

        await host.StartAsync();
        await stopping.Task.WaitAsync(TestMessages.Generous);
        await host.StopAsync();

        var service = host.Services.GetServices<IHostedService>().OfType<PipelineHostedService>().Single();
        var error = await Assert.ThrowsAsync<PipelineStageException>(() => service.ExecuteTask!);
        Assert.That(error!.Stage, Is.EqualTo("handler:explode"));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()), "nothing of a failed run is acked");
    }

    [Test]
    public async Task AddKawaPipeline_HostStopsAndWorkOutlastsDrainTimeout_UnfinishedIsNegativelyAckedAndTheHostStops()
    {
        var time = new Kawa.Dataflow.Tests.Infrastructure.FakeTimeProvider();
        var builder = CreateBuilder(new() { ["Kawa:Pipelines:hosted-drain-timeout:DrainTimeout"] = "00:00:05" });
        builder.Services.AddSingleton<TimeProvider>(time);
        var (host, source) = await StartWithThreeStuckAsync(builder, "hosted-drain-timeout");
        using var _ = host;

        var stopping = host.StopAsync();
        await time.WaitForTimersCreatedAsync(1).WaitAsync(TestMessages.Generous); // the drain timer, on the host's clock
        Assert.That(stopping.IsCompleted, Is.False, "draining");
        time.Advance(TimeSpan.FromSeconds(5));
        await stopping.WaitAsync(TestMessages.Generous);

        Assert.That(source.Tokens, Has.Count.EqualTo(3));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()), "unfinished at the drain timeout: redelivered promptly");
        var service = host.Services.GetServices<IHostedService>().OfType<PipelineHostedService>().Single();
        Assert.That(async () => await service.ExecuteTask!, Throws.InstanceOf<OperationCanceledException>().With.Message.Contains("did not drain within 00:00:05"));
    }

    [Test]
    public async Task AddKawaPipeline_HostShutdownTimeoutBeforeDrainTimeout_DrainEndsAtTheHostsDeadlineAndNegativelyAcks()
    {
        // DrainTimeout (25 s by default) is longer than this host's shutdown timeout: the host's deadline ends the drain.
        var builder = CreateBuilder([]);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromMilliseconds(200));
        var (host, source) = await StartWithThreeStuckAsync(builder, "hosted-host-deadline");
        using var _ = host;

        await host.StopAsync().WaitAsync(TestMessages.Generous);

        var service = host.Services.GetServices<IHostedService>().OfType<PipelineHostedService>().Single();
        Assert.That(service.ExecuteTask!.IsCompleted, Is.True, "the run ended before the host's stop returned");
        Assert.That(source.Tokens, Has.Count.EqualTo(3));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Negative()), "unfinished at the host's deadline: redelivered promptly, not abandoned");
        Assert.That(async () => await service.ExecuteTask!, Throws.InstanceOf<OperationCanceledException>().With.Message.Contains("host's shutdown deadline"));
    }

    /// <summary>Starts a host whose pipeline has three messages in a stage that never finishes them on its own.</summary>
    private static async Task<(IHost Host, TestSource<int> Source)> StartWithThreeStuckAsync(HostApplicationBuilder builder, string name)
    {
        var source = new TestSource<int>(TestMessages.Ints(3), endless: true);
        var entered = 0;
        var allStuck = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        builder.Services.AddKawaPipeline(name, (_, p) => p
            .From(source)
            .Handle<int>(
                "stuck",
                async (m, ct) =>
                {
                    if (Interlocked.Increment(ref entered) == 3)
                    {
                        allStuck.TrySetResult();
                    }

                    await Task.Delay(Timeout.InfiniteTimeSpan, ct); // never finishes on its own
                    return m;
                },
                new StageOptions { MaxDegreeOfParallelism = 3, EnsureOrdered = false })
            .To(new RecordingDestination<int>()));
        var host = builder.Build();
        await host.StartAsync();
        await allStuck.Task.WaitAsync(TestMessages.Generous);
        return (host, source);
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
