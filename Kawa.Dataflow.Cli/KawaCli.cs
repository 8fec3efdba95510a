using System.CommandLine;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Inspect;
using Kawa.Dataflow.Cli.Publish;
using Kawa.Dataflow.Cli.Running;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Cli;

/// <summary>
/// The <c>kawa</c> command line: <c>run</c>, <c>validate</c>, <c>publish</c>, <c>inspect</c>. Every command returns one
/// of <see cref="ExitCodes"/>.
/// </summary>
internal static class KawaCli
{
    /// <summary>Parses and runs a command line, writing to the given streams.</summary>
    /// <returns>An <see cref="ExitCodes"/> value.</returns>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        var root = BuildCommand(stdout, stderr);
        var result = root.Parse(args);
        if (result.Errors.Count > 0)
        {
            foreach (var error in result.Errors)
            {
                stderr.WriteLine($"kawa: {error.Message}");
            }

            stderr.WriteLine("Run 'kawa --help' for usage.");
            return ExitCodes.Usage;
        }

        // kawa run handles SIGINT/SIGTERM itself (drain, then a second signal forces the exit).
        return result.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, ProcessTerminationTimeout = null });
    }

    /// <summary>The command tree.</summary>
    internal static RootCommand BuildCommand(TextWriter stdout, TextWriter stderr)
    {
        var configOption = new Option<FileInfo>("--config", "-c")
        {
            Description = "The pipeline configuration (JSON; comments and trailing commas allowed).",
            Required = true,
        };
        var setOption = new Option<string[]>("--set")
        {
            Description = "Override a setting: --set pipeline.handlers[0].parallelism=4 (repeatable; applied after KAWA_ environment variables).",
            AllowMultipleArgumentsPerToken = false,
        };

        var validate = new Command("validate", "Check a configuration and print every problem with its path (secrets masked).");
        var printOption = new Option<bool>("--print") { Description = "Also print the effective configuration (file + environment + --set), secrets masked." };
        validate.Options.Add(configOption);
        validate.Options.Add(setOption);
        validate.Options.Add(printOption);
        validate.SetAction(parse => Validate(parse.GetRequiredValue(configOption), parse.GetValue(setOption) ?? [], parse.GetValue(printOption), stdout, stderr));

        var run = new Command("run", "Run the pipeline until stopped (SIGTERM/Ctrl+C drains gracefully).");
        var drainOption = new Option<bool>("--drain") { Description = "Stop once the source is caught up, draining cleanly (batch mode)." };
        run.Options.Add(configOption);
        run.Options.Add(setOption);
        run.Options.Add(drainOption);
        run.SetAction(parse =>
        {
            var loaded = Load(parse.GetRequiredValue(configOption), parse.GetValue(setOption) ?? [], stderr);
            if (loaded is null)
            {
                return ExitCodes.ConfigInvalid;
            }

            using var loggerFactory = CreateLoggerFactory();
            return DaemonRunner.RunAsync(loaded, parse.GetValue(drainOption), stderr, loggerFactory).GetAwaiter().GetResult();
        });

        var publish = new Command("publish", "Publish each line of a file (or standard input, '-') to a NATS subject.");
        var urlOption = new Option<string>("--url") { Description = "NATS server URL, e.g. nats://127.0.0.1:4222.", Required = true };
        var subjectOption = new Option<string>("--subject") { Description = "The subject to publish to.", Required = true };
        var inputArgument = new Argument<string>("FILE") { Description = "The file to publish, one message per line; '-' for standard input." };
        var windowOption = new Option<int>("--window") { Description = "Publishes awaiting their PubAck at most (pipelining). Default 256.", DefaultValueFactory = _ => 256 };
        var createStreamOption = new Option<string>("--create-stream") { Description = "Create this stream (file storage, capturing --subject) if it does not exist yet." };
        publish.Options.Add(urlOption);
        publish.Options.Add(subjectOption);
        publish.Options.Add(windowOption);
        publish.Options.Add(createStreamOption);
        publish.Arguments.Add(inputArgument);
        publish.SetAction(parse =>
        {
            using var loggerFactory = CreateLoggerFactory(LogLevel.Warning);
            return PublishCommand.RunAsync(
                parse.GetRequiredValue(urlOption),
                parse.GetRequiredValue(subjectOption),
                parse.GetRequiredValue(inputArgument),
                parse.GetValue(windowOption),
                parse.GetValue(createStreamOption),
                stdout,
                stderr,
                loggerFactory).GetAwaiter().GetResult();
        });

        var inspect = new Command("inspect", "Show the schema, row groups and rows of a Parquet file or directory.");
        var pathArgument = new Argument<string>("PATH") { Description = "A Parquet file, or a directory of them." };
        var jsonOption = new Option<bool>("--json") { Description = "Print as JSON." };
        var rowsOption = new Option<int>("--rows") { Description = "How many first rows to show per file. Default 5.", DefaultValueFactory = _ => 5 };
        var topOption = new Option<string>("--top") { Description = "Also count the values of this column over every row (the 10 most frequent)." };
        inspect.Arguments.Add(pathArgument);
        inspect.Options.Add(jsonOption);
        inspect.Options.Add(rowsOption);
        inspect.Options.Add(topOption);
        inspect.SetAction(parse => InspectCommand.RunAsync(
            parse.GetRequiredValue(pathArgument),
            parse.GetValue(jsonOption),
            Math.Max(0, parse.GetValue(rowsOption)),
            parse.GetValue(topOption),
            stdout,
            stderr).GetAwaiter().GetResult());

        var root = new RootCommand("kawa: run Kawa.Dataflow pipelines from a JSON configuration.");
        root.Subcommands.Add(run);
        root.Subcommands.Add(validate);
        root.Subcommands.Add(publish);
        root.Subcommands.Add(inspect);
        return root;
    }

    private static int Validate(FileInfo config, string[] overrides, bool print, TextWriter stdout, TextWriter stderr)
    {
        var result = ConfigLoader.Load(config.FullName, overrides);
        if (print && result.Configuration is not null)
        {
            stdout.WriteLine(ConfigPrinter.ToMaskedJson(result.Configuration));
        }

        foreach (var warning in result.Warnings)
        {
            stderr.WriteLine($"warning: {warning}");
        }

        if (!result.IsValid)
        {
            WriteErrors(config, result, stderr);
            return ExitCodes.ConfigInvalid;
        }

        var pipeline = result.Options!.Pipeline!;
        stdout.WriteLine($"{config.Name}: valid (pipeline '{pipeline.Name}': {pipeline.Source!.Type} → {pipeline.Handlers.Count} handler(s) → {pipeline.Destination!.Type})");
        return ExitCodes.Ok;
    }

    private static KawaOptions? Load(FileInfo config, string[] overrides, TextWriter stderr)
    {
        var result = ConfigLoader.Load(config.FullName, overrides);
        foreach (var warning in result.Warnings)
        {
            stderr.WriteLine($"warning: {warning}");
        }

        if (result.IsValid)
        {
            return result.Options;
        }

        WriteErrors(config, result, stderr);
        return null;
    }

    private static void WriteErrors(FileInfo config, ConfigLoadResult result, TextWriter stderr)
    {
        var n = result.Errors.Count;
        stderr.WriteLine($"{config.Name}: invalid configuration, {n} error{(n == 1 ? string.Empty : "s")}:");
        foreach (var error in result.Errors)
        {
            stderr.WriteLine($"  {error}");
        }
    }

    /// <summary>Console logs on standard error (standard output carries data), one line each.</summary>
    /// <param name="defaultLevel">The level unless <c>KAWA_LOG_LEVEL</c> says otherwise.</param>
    internal static ILoggerFactory CreateLoggerFactory(LogLevel defaultLevel = LogLevel.Information) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("KAWA_LOG_LEVEL"), ignoreCase: true, out var level) ? level : defaultLevel)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss ";
            o.UseUtcTimestamp = true;
        })
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace));
}
