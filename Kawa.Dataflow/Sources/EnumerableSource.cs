namespace Kawa.Dataflow;

/// <summary>A finite source over a sequence (synchronous or asynchronous): ends when the sequence is exhausted.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>The sequence is enumerated lazily, one item per <see cref="ReceiveAsync"/>, so a slow sink slows the enumeration.</item>
/// <item>Cancelling a receive does not lose an item: a move the caller stopped waiting for is resumed by the next receive.</item>
/// <item>After the end, every receive returns <see cref="Delivery{T}.EndOfStream"/> again. An exception from the sequence is fatal.</item>
/// <item>Outcomes go to the optional callback (a sequence cannot redeliver). Dispose the source to dispose the enumerator early.</item>
/// </list>
/// </remarks>
public sealed class EnumerableSource<T> : ISource<T>, IAsyncDisposable
{
    private readonly IAsyncEnumerable<Message<T>> _sequence;
    private readonly Action<Message<T>, AckOutcome>? _onOutcome;
    private readonly CancellationTokenSource _disposed = new();
    private IAsyncEnumerator<Message<T>>? _enumerator;
    private Task<bool>? _pendingMove;
    private bool _ended;

    /// <summary>A source over an asynchronous sequence of messages.</summary>
    /// <param name="messages">The messages; enumerated once.</param>
    /// <param name="onOutcome">Told each message's final outcome (must not block).</param>
    public EnumerableSource(IAsyncEnumerable<Message<T>> messages, Action<Message<T>, AckOutcome>? onOutcome = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        _sequence = messages;
        _onOutcome = onOutcome;
    }

    /// <summary>A source over a sequence of messages.</summary>
    /// <param name="messages">The messages; enumerated once.</param>
    /// <param name="onOutcome">Told each message's final outcome (must not block).</param>
    public EnumerableSource(IEnumerable<Message<T>> messages, Action<Message<T>, AckOutcome>? onOutcome = null)
        : this(ToAsync(messages ?? throw new ArgumentNullException(nameof(messages))), onOutcome)
    {
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_ended)
        {
            return Delivery<T>.EndOfStream;
        }

        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        _enumerator ??= _sequence.GetAsyncEnumerator(_disposed.Token);
        _pendingMove ??= _enumerator.MoveNextAsync().AsTask();
        var hasNext = await _pendingMove.WaitAsync(cancellationToken).ConfigureAwait(false);
        _pendingMove = null;
        if (!hasNext)
        {
            _ended = true;
            await _enumerator.DisposeAsync().ConfigureAwait(false);
            return Delivery<T>.EndOfStream;
        }

        var message = _enumerator.Current;
        var onOutcome = _onOutcome;
        return new Delivery<T>(message, onOutcome is null ? AckToken.None() : AckToken.Create(outcome => onOutcome(message, outcome)));
    }

    /// <summary>Stops the enumeration and disposes the enumerator.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        if (_enumerator is not null && !_ended)
        {
            if (_pendingMove is not null)
            {
                try
                {
                    await _pendingMove.ConfigureAwait(false);
                }
                catch (Exception)
                {
                    // Disposing: the sequence's failure or cancellation no longer matters.
                }
            }

            await _enumerator.DisposeAsync().ConfigureAwait(false);
        }

        _disposed.Dispose();
    }

    private static IAsyncEnumerable<Message<T>> ToAsync(IEnumerable<Message<T>> messages) => new SyncSequence(messages);

    // A synchronous sequence seen through the asynchronous interface, without a state machine per item.
    private sealed class SyncSequence(IEnumerable<Message<T>> messages) : IAsyncEnumerable<Message<T>>
    {
        public IAsyncEnumerator<Message<T>> GetAsyncEnumerator(CancellationToken cancellationToken = default) => new Enumerator(messages.GetEnumerator());

        private sealed class Enumerator(IEnumerator<Message<T>> inner) : IAsyncEnumerator<Message<T>>
        {
            public Message<T> Current => inner.Current;

            public ValueTask<bool> MoveNextAsync() => new(inner.MoveNext());

            public ValueTask DisposeAsync()
            {
                inner.Dispose();
                return default;
            }
        }
    }
}

/// <summary>Ready-made sources and source combinators.</summary>
public static partial class Sources
{
    /// <summary>A finite source over values (each becomes a message without key, topic or attributes).</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="values">The values; enumerated once, lazily.</param>
    public static EnumerableSource<T> FromValues<T>(IEnumerable<T> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        return new EnumerableSource<T>(values.Select(v => new Message<T>(v)));
    }
}
