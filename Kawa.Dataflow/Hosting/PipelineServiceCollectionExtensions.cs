using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Kawa.Dataflow;

/// <summary>Runs pipelines as hosted services in a generic host.</summary>
public static class PipelineServiceCollectionExtensions
{
    /// <summary>The configuration section under which each pipeline's options are bound: <c>Kawa:Pipelines:&lt;name&gt;</c>.</summary>
    public const string ConfigurationSection = "Kawa:Pipelines";

    /// <summary>
    /// Adds a pipeline that runs for the host's lifetime: it starts with the host and drains gracefully when the host
    /// stops (receiving stops, in-flight work finishes and is flushed within <see cref="PipelineOptions.DrainTimeout"/>,
    /// 25 s by default, below the host's 30 s shutdown timeout).
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="name">The pipeline's name; its options are the named <see cref="PipelineOptions"/> <paramref name="name"/>,
    /// bound from <c>Kawa:Pipelines:&lt;name&gt;</c> and validated at start-up: a value out of range, a value that does
    /// not convert, or a key that names no option makes the host's start fail with an <see cref="OptionsValidationException"/>
    /// naming the pipeline and the option.</param>
    /// <param name="define">Builds the pipeline from services: <c>(sp, p) =&gt; p.From(...).Handle(...).To(...)</c>.</param>
    /// <returns>The options builder, to configure the options further (code wins over configuration when added later).</returns>
    /// <remarks>
    /// Unless set in code, the pipeline logs through the host's <c>ILoggerFactory</c> and uses a registered
    /// <see cref="TimeProvider"/> if there is one. A fatal pipeline error faults the hosted service, which by default
    /// stops the host.
    /// </remarks>
    public static OptionsBuilder<PipelineOptions> AddKawaPipeline(this IServiceCollection services, string name, Func<IServiceProvider, PipelineBuilder, PipelineDefinition> define)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(define);

        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PipelineOptions>, PipelineOptionsValidator>());

        // Not AddHostedService: it de-duplicates by implementation type, which would keep only the first pipeline.
        services.AddSingleton<IHostedService>(sp => new PipelineHostedService(name, sp, define));
        var section = $"{ConfigurationSection}:{name}";
        return services.AddOptions<PipelineOptions>(name)
            .Configure<IConfiguration>((options, configuration) => Bind(name, section, configuration, options))
            .ValidateOnStart();
    }

    // Binds strictly: a key that names no option (a typo) or a value that does not convert is a start-up error naming
    // the pipeline, the section and the key, instead of an option silently left at its default.
    private static void Bind(string name, string section, IConfiguration configuration, PipelineOptions options)
    {
        try
        {
            configuration.GetSection(section).Bind(options, binder => binder.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException ex)
        {
            throw new OptionsValidationException(name, typeof(PipelineOptions), [$"Kawa pipeline '{name}': configuration section '{section}' is invalid: {ex.Message}"]);
        }
    }
}

/// <summary>Validates <see cref="PipelineOptions"/> bound from configuration, reporting every problem at once.</summary>
internal sealed class PipelineOptionsValidator : IValidateOptions<PipelineOptions>
{
    public ValidateOptionsResult Validate(string? name, PipelineOptions options)
    {
        var errors = new List<string>();
        options.Validate(errors);
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors.Select(e => $"Kawa pipeline '{name}': {e}"));
    }
}
