namespace Kawa.Dataflow.Cli.Configuration;

/// <summary>One problem in a configuration, with where it is.</summary>
/// <param name="Path">
/// Where, as a JSON-style path from the root (<c>pipeline.handlers[1].parallelism</c>), or
/// <c>file:line:column</c> for a syntax error.
/// </param>
/// <param name="Message">What is wrong, specific enough to fix it; never contains a secret's value.</param>
internal sealed record ConfigError(string Path, string Message)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Path}: {Message}";
}

/// <summary>Collects <see cref="ConfigError"/>s so a run reports every problem at once.</summary>
internal sealed class ConfigErrors
{
    private readonly List<ConfigError> _errors = [];
    private readonly List<ConfigError> _warnings = [];

    /// <summary>The errors in the order found.</summary>
    public IReadOnlyList<ConfigError> All => _errors;

    /// <summary>Warnings: valid, but probably not what was meant. They do not make the configuration invalid.</summary>
    public IReadOnlyList<ConfigError> Warnings => _warnings;

    /// <summary>Reports a warning at <paramref name="path"/>.</summary>
    public void Warn(string path, string message) => _warnings.Add(new ConfigError(path, message));

    /// <summary>Whether nothing was reported.</summary>
    public bool IsEmpty => _errors.Count == 0;

    /// <summary>Reports a problem at <paramref name="path"/>.</summary>
    public void Add(string path, string message) => _errors.Add(new ConfigError(path, message));

    /// <summary>Whether an error was reported at <paramref name="path"/> or below it.</summary>
    public bool HasAt(string path) => _errors.Exists(e =>
        e.Path.StartsWith(path, StringComparison.Ordinal)
        && (e.Path.Length == path.Length || e.Path[path.Length] is '.' or '['));
}
