using System.Text;

namespace Kawa.Dataflow;

/// <summary>Creates <see cref="WriterDestination{T}"/>s (Kawa's printer).</summary>
public static class WriterDestination
{
    /// <summary>Writes raw byte payloads to <paramref name="stream"/>, each followed by <paramref name="delimiter"/> (default <c>"\n"</c>).</summary>
    /// <param name="stream">Where to write; not disposed by the destination.</param>
    /// <param name="delimiter">The bytes written after each message; <see langword="null"/> for a newline.</param>
    public static WriterDestination<byte[]> ForStream(Stream stream, byte[]? delimiter = null)
        => ForStream<byte[]>(stream, static m => m.Value, delimiter);

    /// <summary>Writes each message encoded by <paramref name="encode"/> to <paramref name="stream"/>, each followed by <paramref name="delimiter"/>.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="stream">Where to write; not disposed by the destination.</param>
    /// <param name="encode">Turns a message into the bytes to write.</param>
    /// <param name="delimiter">The bytes written after each message; <see langword="null"/> for a newline.</param>
    public static WriterDestination<T> ForStream<T>(Stream stream, Func<Message<T>, ReadOnlyMemory<byte>> encode, byte[]? delimiter = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(encode);
        var separator = delimiter ?? "\n"u8.ToArray();
        return new WriterDestination<T>(
            async (messages, ct) =>
            {
                foreach (var message in messages)
                {
                    await stream.WriteAsync(encode(message), ct).ConfigureAwait(false);
                    await stream.WriteAsync(separator, ct).ConfigureAwait(false);
                }

                await stream.FlushAsync(ct).ConfigureAwait(false);
            });
    }

    /// <summary>Writes each message formatted by <paramref name="format"/> (default: the payload's <c>ToString()</c>)
    /// to <paramref name="writer"/>, each followed by <paramref name="delimiter"/>.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="writer">Where to write (for example <see cref="Console.Out"/>); not disposed by the destination.</param>
    /// <param name="format">Turns a message into text; <see langword="null"/> for the payload's <c>ToString()</c> (invariant culture).</param>
    /// <param name="delimiter">Written after each message; <see langword="null"/> for <c>"\n"</c>.</param>
    public static WriterDestination<T> ForWriter<T>(TextWriter writer, Func<Message<T>, string>? format = null, string? delimiter = null)
    {
        ArgumentNullException.ThrowIfNull(writer);
        format ??= static m => m.Value is IFormattable formattable
            ? formattable.ToString(null, System.Globalization.CultureInfo.InvariantCulture)
            : m.Value?.ToString() ?? string.Empty;
        var separator = delimiter ?? "\n";
        return new WriterDestination<T>(
            async (messages, ct) =>
            {
                var text = new StringBuilder();
                foreach (var message in messages)
                {
                    text.Append(format(message)).Append(separator);
                }

                await writer.WriteAsync(text, ct).ConfigureAwait(false);
                await writer.FlushAsync(ct).ConfigureAwait(false);
            });
    }
}

/// <summary>
/// A destination that writes each message with a delimiter to a stream or text writer, flushes, then acks (Kawa's printer):
/// stdout, a log file, a socket.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Sends are serialized (one writer), and the writer is flushed after each send, before the ack. A write or flush that
/// throws is fatal and the token is left to the caller (never acked).
/// </remarks>
public sealed class WriterDestination<T> : IDestination<T>, IDisposable
{
    private readonly Func<Messages<T>, CancellationToken, ValueTask> _write;
    private readonly SemaphoreSlim _lock = new(1, 1);

    internal WriterDestination(Func<Messages<T>, CancellationToken, ValueTask> write) => _write = write;

    /// <inheritdoc/>
    public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _write(messages, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }

        ack.Ack();
    }

    /// <summary>Releases the send lock. The underlying stream or writer is not disposed: it belongs to the caller.</summary>
    public void Dispose() => _lock.Dispose();
}
