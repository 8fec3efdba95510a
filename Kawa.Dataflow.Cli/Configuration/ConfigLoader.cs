using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>What loading a configuration produced: the options when valid, and every error found.</summary>
/// <param name="Options">The bound options; <see langword="null"/> when the file could not be read or parsed at all.</param>
/// <param name="Errors">Every problem, each with its path. Empty when the configuration is valid.</param>
/// <param name="Configuration">The merged configuration tree (file, environment, overrides), for printing.</param>
internal sealed record ConfigLoadResult(KawaOptions? Options, IReadOnlyList<ConfigError> Errors, IConfiguration? Configuration)
{
    /// <summary>Valid but questionable settings, each with its path.</summary>
    public IReadOnlyList<ConfigError> Warnings { get; init; } = [];

    /// <summary>Whether the configuration can be run.</summary>
    public bool IsValid => Options is not null && Errors.Count == 0;
}

/// <summary>
/// Loads the daemon configuration: a JSON file (comments and trailing commas allowed), then environment variables
/// prefixed <c>KAWA_</c> (<c>KAWA_PIPELINE__LIMITS__DRAINTIMEOUT=00:00:10</c>), then command-line overrides
/// (<c>pipeline.handlers[0].parallelism=4</c>); later sources win. Then binds and validates it, collecting every error.
/// </summary>
internal static class ConfigLoader
{
    /// <summary>The environment variable prefix.</summary>
    public const string EnvironmentPrefix = "KAWA_";

    private static readonly JsonDocumentOptions s_jsonOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Loads, binds and validates the configuration at <paramref name="path"/>.</summary>
    /// <param name="path">The JSON file.</param>
    /// <param name="overrides"><c>key=value</c> settings applied last; keys as printed paths (<c>a.b[0].c</c>) or configuration keys (<c>a:b:0:c</c>).</param>
    /// <param name="useEnvironment">Whether <c>KAWA_</c> environment variables apply.</param>
    /// <param name="baseDirectory">What relative paths in the configuration are relative to; default the current directory.</param>
    public static ConfigLoadResult Load(string path, IEnumerable<string>? overrides = null, bool useEnvironment = true, string? baseDirectory = null)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            var reason = ex is FileNotFoundException or DirectoryNotFoundException ? "file not found" : ex.Message;
            return new(null, [new ConfigError(path, $"cannot read the configuration file: {reason}")], null);
        }

        return Load(bytes, path, overrides, useEnvironment, baseDirectory);
    }

    /// <summary>Loads, binds and validates configuration JSON; <paramref name="fileName"/> names it in errors.</summary>
    public static ConfigLoadResult Load(ReadOnlyMemory<byte> json, string fileName, IEnumerable<string>? overrides = null, bool useEnvironment = true, string? baseDirectory = null)
    {
        var errors = new ConfigErrors();
        if (!CheckJson(json, fileName, errors))
        {
            return new(null, errors.All, null);
        }

        var builder = new ConfigurationBuilder().AddJsonStream(new MemoryStream(json.ToArray(), writable: false));
        if (useEnvironment)
        {
            builder.AddInMemoryCollection(EnvironmentSettings());
        }

        var args = new List<string>();
        var index = 0;
        foreach (var setting in overrides ?? [])
        {
            index++;
            var eq = setting.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                // Not echoed: a malformed override may still hold a secret.
                errors.Add("--set", $"override {index} is not key=value (e.g. pipeline.limits.drainTimeout=00:00:10)");
                continue;
            }

            args.Add($"--{ToConfigKey(setting[..eq])}={setting[(eq + 1)..]}");
        }

        builder.AddCommandLine([.. args]);
        IConfigurationRoot configuration;
        try
        {
            configuration = builder.Build();
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException)
        {
            errors.Add(fileName, $"cannot load the configuration: {ex.Message}");
            return new(null, errors.All, null);
        }

        var options = new ConfigReader(errors).Read(configuration);
        ConfigValidator.Validate(options, errors, baseDirectory ?? Directory.GetCurrentDirectory());
        return new(options, errors.All, configuration) { Warnings = errors.Warnings };
    }

    /// <summary>Variables the CLI reads itself (not settings of the configuration file).</summary>
    internal static readonly string[] ReservedEnvironmentVariables = ["KAWA_LOG_LEVEL"];

    /// <summary>
    /// The <c>KAWA_</c> environment variables as configuration keys (<c>__</c> → <c>:</c>), as the stock environment
    /// provider maps them, minus <see cref="ReservedEnvironmentVariables"/>, which would otherwise be unknown keys.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, string?>> EnvironmentSettings()
    {
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            var name = (string)variable.Key;
            if (name.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase)
                && !ReservedEnvironmentVariables.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                yield return new(name[EnvironmentPrefix.Length..].Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal), (string?)variable.Value);
            }
        }
    }

    /// <summary><c>a.b[0].c</c> → <c>a:b:0:c</c>; a key already in colon form is unchanged.</summary>
    public static string ToConfigKey(string key)
        => key.Replace("]", string.Empty, StringComparison.Ordinal)
            .Replace('[', ':')
            .Replace('.', ':')
            .Replace("__", ":", StringComparison.Ordinal)
            .Trim(':');

    // The configuration provider's own parse error has no position; parse first to report line and column,
    // and catch duplicate keys (which the provider rejects without saying where) with their paths.
    private static bool CheckJson(ReadOnlyMemory<byte> json, string fileName, ConfigErrors errors)
    {
        try
        {
            using var document = JsonDocument.Parse(json, s_jsonOptions);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                errors.Add(fileName, $"the configuration must be a JSON object, got {document.RootElement.ValueKind.ToString().ToLowerInvariant()}");
                return false;
            }

            FindDuplicates(document.RootElement, string.Empty, errors);
            return errors.IsEmpty;
        }
        catch (JsonException ex)
        {
            var line = (ex.LineNumber ?? 0) + 1;
            var column = ColumnOf(json.Span, ex.LineNumber ?? 0, ex.BytePositionInLine ?? 0);
            errors.Add($"{fileName}:{line}:{column}", $"invalid JSON: {StripPosition(ex.Message)}");
            return false;
        }
    }

    private static void FindDuplicates(JsonElement element, string path, ConfigErrors errors)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            foreach (var property in element.EnumerateObject())
            {
                var childPath = ConfigReader.Join(path, property.Name);
                if (!seen.Add(property.Name))
                {
                    errors.Add(childPath, "duplicate key (keys are case-insensitive)");
                }

                FindDuplicates(property.Value, childPath, errors);
            }
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var item in element.EnumerateArray())
            {
                FindDuplicates(item, $"{path}[{i++}]", errors);
            }
        }
    }

    // JsonException gives a byte offset in the line; users count characters (1-based).
    private static long ColumnOf(ReadOnlySpan<byte> json, long line, long bytePosition)
    {
        var start = 0;
        for (var l = 0; l < line; l++)
        {
            var next = json[start..].IndexOf((byte)'\n');
            if (next < 0)
            {
                return bytePosition + 1;
            }

            start += next + 1;
        }

        var length = (int)Math.Min(bytePosition, json.Length - start);
        return Encoding.UTF8.GetCharCount(json.Slice(start, length)) + 1;
    }

    private static string StripPosition(string message)
    {
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut >= 0 ? message[..cut] : message).Trim();
    }
}
