namespace Kawa.Dataflow.Cli.Handlers;

/// <summary>
/// A payload that a <c>parse</c> handler could not turn into fields. Goes to the stage's error policy; the payload
/// is kept so a dead-letter record (or a log) has exactly the bytes that failed.
/// </summary>
/// <remarks>Not retryable in any useful way: the same bytes fail the same way. Pair with <c>deadLetter</c> or <c>skip</c>.</remarks>
internal sealed class EventParseException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="format">The parser (<c>json</c>, <c>combined</c>, <c>regex</c>).</param>
    /// <param name="reason">What was wrong, specifically.</param>
    /// <param name="raw">The payload that failed (not copied).</param>
    /// <param name="position">Where in the payload (0-based), or -1 when not known.</param>
    /// <param name="inner">The underlying error, if any.</param>
    public EventParseException(string format, string reason, ReadOnlyMemory<byte> raw, long position = -1, Exception? inner = null)
        : base(position >= 0 ? $"{format}: {reason} (at byte {position})" : $"{format}: {reason}", inner)
    {
        Format = format;
        Reason = reason;
        Raw = raw;
        Position = position;
    }

    /// <summary>Creates the exception with a message only (serialization-free form required by the analyzers).</summary>
    public EventParseException()
        : this("unknown", "parse error", default)
    {
    }

    /// <summary>Creates the exception with a message only.</summary>
    public EventParseException(string message)
        : this("unknown", message, default)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public EventParseException(string message, Exception innerException)
        : this("unknown", message, default, -1, innerException)
    {
    }

    /// <summary>The parser that failed.</summary>
    public string Format { get; }

    /// <summary>What was wrong.</summary>
    public string Reason { get; }

    /// <summary>The payload exactly as received.</summary>
    public ReadOnlyMemory<byte> Raw { get; }

    /// <summary>The byte offset of the problem, or -1.</summary>
    public long Position { get; }
}
