namespace Kawa.Dataflow;

/// <summary>
/// A payload could not be parsed. Keeps the raw bytes, so the stage's error policy (dead-letter, skip) can preserve
/// them, and where in the payload the parser gave up.
/// </summary>
public sealed class PayloadFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public PayloadFormatException()
        : base("A payload could not be parsed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public PayloadFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the parser's error.</summary>
    public PayloadFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with everything a dead letter needs.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="rawPayload">The payload as received.</param>
    /// <param name="targetType">The type it was parsed into.</param>
    /// <param name="lineNumber">The 0-based line where parsing stopped, if known.</param>
    /// <param name="bytePositionInLine">The 0-based byte offset in that line, if known.</param>
    /// <param name="path">The JSON path where parsing stopped, if known.</param>
    /// <param name="innerException">The parser's error.</param>
    public PayloadFormatException(string message, ReadOnlyMemory<byte> rawPayload, Type targetType, long? lineNumber, long? bytePositionInLine, string? path, Exception? innerException)
        : base(message, innerException)
    {
        RawPayload = rawPayload;
        TargetType = targetType;
        LineNumber = lineNumber;
        BytePositionInLine = bytePositionInLine;
        Path = path;
    }

    /// <summary>The payload as received (UTF-8 bytes for a string payload).</summary>
    public ReadOnlyMemory<byte> RawPayload { get; }

    /// <summary>The type the payload was parsed into.</summary>
    public Type? TargetType { get; }

    /// <summary>The 0-based line where parsing stopped, if known.</summary>
    public long? LineNumber { get; }

    /// <summary>The 0-based byte offset within <see cref="LineNumber"/> where parsing stopped, if known.</summary>
    public long? BytePositionInLine { get; }

    /// <summary>The JSON path where parsing stopped, if known.</summary>
    public string? Path { get; }
}
