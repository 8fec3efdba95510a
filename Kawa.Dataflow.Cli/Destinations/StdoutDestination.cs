using System.Buffers;
using System.Text.Json;
using Kawa.Dataflow.Cli.Events;

namespace Kawa.Dataflow.Cli.Destinations;

/// <summary>
/// The <c>stdout</c> destination: one line per message, the fields as a JSON object (<c>json</c>) or the raw payload
/// (<c>raw</c>). Acks each token once its lines are flushed to the stream.
/// </summary>
/// <remarks>
/// Sends may come concurrently; a lock keeps each token's lines together. A write that fails throws (the pipeline treats
/// it as fatal and negatively acks the token); the token is then never acked here. "Durable" for a pipe means handed to
/// the operating system: whatever reads the pipe owns it from there.
/// </remarks>
internal sealed class StdoutDestination : IDestination<EventRecord>, IDisposable
{
    private static readonly byte[] s_newLine = "\n"u8.ToArray();

    private readonly Stream _output;
    private readonly bool _raw;
    private readonly SemaphoreSlim _lock;
    private readonly bool _ownsLock;

    /// <summary>Creates the destination.</summary>
    /// <param name="output">Where lines go (standard output in the daemon). Not disposed here.</param>
    /// <param name="format"><c>json</c> or <c>raw</c>.</param>
    /// <param name="sharedLock">A lock shared with other writers of the same stream (default: one of its own), so whole lines never interleave.</param>
    public StdoutDestination(Stream output, string format = "json", SemaphoreSlim? sharedLock = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        _output = output;
        _ownsLock = sharedLock is null;
        _lock = sharedLock ?? new SemaphoreSlim(1, 1);
        _raw = format switch
        {
            "raw" => true,
            "json" => false,
            _ => throw new ArgumentException($"unknown stdout format '{format}' (expected json or raw)", nameof(format)),
        };
    }

    /// <inheritdoc/>
    public async ValueTask SendAsync(AckToken ack, Messages<EventRecord> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        var buffer = new ArrayBufferWriter<byte>();
        foreach (var message in messages)
        {
            if (_raw)
            {
                var raw = message.Value.Raw.Span;
                if (raw.Length > 0 && raw[^1] == (byte)'\n')
                {
                    raw = raw[..^1];
                }

                buffer.Write(raw);
            }
            else
            {
                using var writer = new Utf8JsonWriter(buffer);
                EventRecordJson.Write(writer, message.Value);
            }

            buffer.Write(s_newLine);
        }

        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await _output.WriteAsync(buffer.WrittenMemory, cancellationToken).ConfigureAwait(false);
            await _output.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }

        ack.Ack();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsLock)
        {
            _lock.Dispose();
        }
    }
}
