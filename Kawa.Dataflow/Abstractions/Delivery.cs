namespace Kawa.Dataflow;

/// <summary>What a source's receive returns: a message and its ack token, or the end of the stream.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks><c>default</c> is <see cref="EndOfStream"/>.</remarks>
public readonly struct Delivery<T>
{
    /// <summary>A message and the token that settles it.</summary>
    /// <param name="message">The message.</param>
    /// <param name="ack">Its ack token; a fresh one for every delivery.</param>
    public Delivery(Message<T> message, AckToken ack)
    {
        ArgumentNullException.ThrowIfNull(ack);
        Message = message;
        Ack = ack;
    }

    /// <summary>The source has no more messages: a finite source's normal ending.</summary>
    public static Delivery<T> EndOfStream => default;

    /// <summary>Whether this marks the end of the stream rather than a message.</summary>
    public bool IsEndOfStream => Ack is null;

    /// <summary>The message (undefined at end of stream).</summary>
    public Message<T> Message { get; }

    /// <summary>The message's ack token (<see langword="null"/> at end of stream).</summary>
    public AckToken Ack { get; }
}
