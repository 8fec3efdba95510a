using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>A logger factory that keeps every log entry (level, category, event, message), for asserting what a component reported.</summary>
public sealed class CapturingLoggerFactory : ILoggerFactory
{
    private readonly ConcurrentQueue<(LogLevel Level, string Category, EventId Event, string Message, Exception? Exception)> _entries = new();

    /// <summary>A snapshot of the entries so far, in the order they were logged.</summary>
    public IReadOnlyList<(LogLevel Level, string Category, EventId Event, string Message, Exception? Exception)> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void AddProvider(ILoggerProvider provider)
    {
    }

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerFactory owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => owner._entries.Enqueue((logLevel, category, eventId, formatter(state, exception), exception));
    }
}
