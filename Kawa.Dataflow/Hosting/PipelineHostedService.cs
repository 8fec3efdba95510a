using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow;

/// <summary>Runs one pipeline for the host's lifetime; the host's stop token starts its graceful drain.</summary>
/// <remarks>The pipeline is built when the host starts, before it runs: a definition that does not validate (a stage's
/// options, a dead-letter type) fails the host's start with that error instead of faulting the service later.</remarks>
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

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Pipeline!.RunAsync(stoppingToken);
}
