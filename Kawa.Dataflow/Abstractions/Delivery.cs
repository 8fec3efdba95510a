namespace Kawa.Dataflow;

/// <summary>What a source's receive returns: a message and its ack token, the end of the stream, or idle.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks><c>default</c> is <see cref="EndOfStream"/>. See <see cref="ISource{T}"/> for when to return <see cref="Idle"/>.</remarks>
public readonly struct Delivery<T>
{
    // Idle is told apart from a message by a marker in the token slot, so the struct stays two fields wide. The marker
    // lives in a non-generic class: a static of this generic struct would cost a runtime lookup at every read in shared
    // generic code (any reference-type payload), which the pipeline does once per message.
    private readonly AckToken _ack;

    /// <summary>A message and the token that settles it.</summary>
    /// <param name="message">The message.</param>
    /// <param name="ack">Its ack token; a fresh one for every delivery.</param>
    public Delivery(Message<T> message, AckToken ack)
    {
        ArgumentNullException.ThrowIfNull(ack);
        Message = message;
        _ack = ack;
    }

    private Delivery(AckToken marker)
    {
        Message = default;
        _ack = marker;
    }

    /// <summary>The source has no more messages: a finite source's normal ending.</summary>
    public static Delivery<T> EndOfStream => default;

    /// <summary>
    /// The source has nothing more to deliver right now and is waiting for the outcomes of messages it handed out
    /// (for example a drain-mode source that must see them settled before it can end the stream, or redeliver them).
    /// The pipeline then asks its destinations to make what they hold durable and settle it
    /// (<see cref="IDestination{T}.CommitHeldAsync"/>), and calls <see cref="ISource{T}.ReceiveAsync"/> again.
    /// </summary>
    public static Delivery<T> Idle { get; } = new(IdleDelivery.Marker);

    /// <summary>Whether this marks the end of the stream rather than a message.</summary>
    public bool IsEndOfStream => _ack is null;

    /// <summary>Whether this is <see cref="Idle"/> rather than a message.</summary>
    public bool IsIdle => ReferenceEquals(_ack, IdleDelivery.Marker);

    /// <summary>The message (undefined at end of stream and when idle).</summary>
    public Message<T> Message { get; }

    /// <summary>The message's ack token (<see langword="null"/> at end of stream and when idle).</summary>
    public AckToken Ack => ReferenceEquals(_ack, IdleDelivery.Marker) ? null! : _ack;
}

/// <summary>The token slot's marker for <see cref="Delivery{T}.Idle"/>, shared by every payload type.</summary>
internal static class IdleDelivery
{
    public static readonly AckToken Marker = new IdleMarker();

    private sealed class IdleMarker : AckToken
    {
        protected override void OnCompleted(AckOutcome outcome)
        {
        }
    }
}
