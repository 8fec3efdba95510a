namespace Kawa.Dataflow;

/// <summary>One batch handed to an <see cref="IBatchFlusher{T}"/>: its messages and the hook to defer their acks.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// The same <see cref="Batch{T}"/> is passed again on each retry, with <see cref="Attempt"/> counting up. The flusher
/// never sees ack tokens: the sink settles them, or the flusher does through <see cref="DeferAcks"/>.
/// </remarks>
public sealed class Batch<T>
{
    private readonly BatchSettlement _settlement;
    private DeferredAcks? _deferred;

    internal Batch(IReadOnlyList<Message<T>> messages, long estimatedBytes, BatchSettlement settlement)
    {
        Messages = messages;
        EstimatedBytes = estimatedBytes;
        _settlement = settlement;
    }

    /// <summary>The messages, in the order they were sent.</summary>
    public IReadOnlyList<Message<T>> Messages { get; }

    /// <summary>The batch's size as estimated for <see cref="BatchingOptions{T}.MaxBatchBytes"/> (0 when not estimated).</summary>
    public long EstimatedBytes { get; }

    /// <summary>Which attempt this is: 1 for the first flush, 2 for the first retry, and so on.</summary>
    public int Attempt { get; internal set; }

    /// <summary>Whether the current attempt deferred its acks.</summary>
    public bool AcksDeferred => _deferred is { IsRevoked: false };

    /// <summary>
    /// Takes over the acks of this batch: after the flush returns, the sink does not ack its messages; the caller
    /// settles them later through the returned handle (for example when the file they were appended to is committed).
    /// </summary>
    /// <remarks>
    /// <list type="bullet">
    /// <item>Call it during <see cref="IBatchFlusher{T}.FlushAsync"/>. Calling it again in the same attempt returns the same handle.</item>
    /// <item>If the attempt then throws or is abandoned by the watchdog, the deferral is revoked: the sink takes the acks
    /// back (retry, then the error handler), and the old handle's methods do nothing and return <see langword="false"/>.</item>
    /// <item>Settle every handle by the end of <see cref="IBatchFlusher{T}.CompleteAsync"/>: whatever is still unsettled
    /// when the drain ends is negatively acked by the sink.</item>
    /// </list>
    /// </remarks>
    /// <exception cref="InvalidOperationException">The batch is already settled (its attempt was abandoned or the drain timed out).</exception>
    public DeferredAcks DeferAcks()
    {
        if (_settlement.IsSettled)
        {
            throw new InvalidOperationException("This batch was already settled (its flush was abandoned, or the drain timed out); its acks can no longer be deferred.");
        }

        return _deferred is { IsRevoked: false } current ? current : _deferred = new DeferredAcks(_settlement);
    }

    internal DeferredAcks? Deferred => _deferred is { IsRevoked: false } current ? current : null;

    /// <summary>The watchdog's revocation, from another thread than the flusher's: the handle stops working, and the
    /// attempt's own code (which may still run) is left to clear it.</summary>
    internal void RevokeDeferralHandle() => Volatile.Read(ref _deferred)?.Revoke();

    internal void RevokeDeferral()
    {
        _deferred?.Revoke();
        _deferred = null;
    }
}

/// <summary>The acks of one batch, taken over by its flusher with <see cref="Batch{T}.DeferAcks"/>, to settle once its
/// messages are durable.</summary>
/// <remarks>
/// Exactly one settlement counts: the first of <see cref="Ack"/>, <see cref="Nack"/>, the sink's drain timeout, or the
/// watchdog. The methods never throw for a settled or revoked handle; they return <see langword="false"/>. They do
/// not block (tokens complete synchronously), so they may be called from a commit callback.
/// </remarks>
public sealed class DeferredAcks
{
    private readonly BatchSettlement _settlement;
    private volatile bool _revoked;

    internal DeferredAcks(BatchSettlement settlement) => _settlement = settlement;

    /// <summary>How many messages this handle settles.</summary>
    public int Count => _settlement.Count;

    /// <summary>Whether the batch has its outcome (from this handle or from the sink).</summary>
    public bool IsSettled => _settlement.IsSettled;

    /// <summary>Whether the attempt that deferred failed, so the sink took the acks back.</summary>
    public bool IsRevoked => _revoked;

    /// <summary>The messages are durable: acks them.</summary>
    /// <returns><see langword="true"/> if this call settled the batch.</returns>
    public bool Ack() => !_revoked && _settlement.TrySettle(AckOutcome.Acked);

    /// <summary>The messages will not become durable: negatively acks them for redelivery after <paramref name="delay"/>.</summary>
    /// <param name="delay">The redelivery delay.</param>
    /// <returns><see langword="true"/> if this call settled the batch.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative.</exception>
    public bool Nack(TimeSpan delay = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        return !_revoked && _settlement.TrySettle(AckOutcome.Negative(delay));
    }

    /// <summary>Asks the sources to keep the messages alive (for example while a file stays open). Not final.</summary>
    public void InProgress()
    {
        if (!_revoked)
        {
            _settlement.InProgress();
        }
    }

    internal void Revoke() => _revoked = true;
}
