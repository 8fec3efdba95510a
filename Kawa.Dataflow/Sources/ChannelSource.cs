using System.Threading.Channels;

namespace Kawa.Dataflow;

/// <summary>A source over an in-memory <see cref="ChannelReader{T}"/>: for tests, and for feeding a pipeline from application code.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Ends when the channel is completed and drained (a channel completed with an error rethrows it: fatal).
/// Each delivery gets a fresh token; its outcome goes to the optional callback, since a channel cannot redeliver.
/// </remarks>
public sealed class ChannelSource<T> : ISource<T>
{
    private readonly ChannelReader<Message<T>> _reader;
    private readonly Action<Message<T>, AckOutcome>? _onOutcome;

    /// <summary>Creates the source.</summary>
    /// <param name="reader">Where messages come from.</param>
    /// <param name="onOutcome">Told each message's final outcome (called on the settling thread; must not block).</param>
    public ChannelSource(ChannelReader<Message<T>> reader, Action<Message<T>, AckOutcome>? onOutcome = null)
    {
        ArgumentNullException.ThrowIfNull(reader);
        _reader = reader;
        _onOutcome = onOutcome;
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        while (true)
        {
            if (_reader.TryRead(out var message))
            {
                return new Delivery<T>(message, CreateToken(message));
            }

            if (!await _reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                return Delivery<T>.EndOfStream;
            }
        }
    }

    private AckToken CreateToken(Message<T> message)
    {
        var onOutcome = _onOutcome;
        return onOutcome is null ? AckToken.None() : AckToken.Create(outcome => onOutcome(message, outcome));
    }
}
