using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow;

/// <summary>Runs one pipeline for the host's lifetime; the host's stop token starts its graceful drain.</summary>
/// <remarks>The pipeline is built when the host starts, before it runs: a definition that does not validate (a stage's
/// options, a dead-letter type) fails the host's start with that error instead of faulting the service later.
/// <para>The drain is bounded by <see cref="PipelineOptions.DrainTimeout"/> and by the host's own shutdown timeout,
/// whichever comes first: when the host's stop token fires while the pipeline still drains, the drain ends at once and
/// what did not finish is negatively acked (redelivered promptly), as at the drain timeout, instead of the host
/// walking away with those messages left to the source's redelivery timeout. The service then waits at most
/// <see cref="AbortGrace"/> for those negative acks.</para></remarks>
internal sealed class PipelineHostedService(string name, IServiceProvider services, Func<IServiceProvider, PipelineBuilder, PipelineDefinition> define) : BackgroundService
{
    /// <summary>The pipeline, once the host started.</summary>
    public Pipeline? Pipeline { get; private set; }

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var options = services.GetRequiredService<IOptionsMonitor<PipelineOptions>>().Get(name).Clone();
        if (options.LoggerFactory is NullLoggerFactory && services.GetService<ILoggerFactory>() is { } loggerFactory)
        {
            options.LoggerFactory = loggerFactory;
        }

        if (ReferenceEquals(options.TimeProvider, TimeProvider.System) && services.GetService<TimeProvider>() is { } timeProvider)
        {
            options.TimeProvider = timeProvider;
        }

        Pipeline = define(services, Kawa.Dataflow.Pipeline.Create(name)).Build(options);
        return base.StartAsync(cancellationToken);
    }

    /// <summary>How long a stop whose host deadline has passed still waits for the aborted run to settle its messages.</summary>
    internal static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Pipeline!.RunAsync(stoppingToken);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // Returns when the run has ended, or early when the host's deadline (its shutdown timeout) has passed.
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (ExecuteTask is { IsCompleted: false } running)
        {
            Pipeline?.CurrentRun?.EndDrainNow();
            await running.WaitAsync(AbortGrace, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }
}
