namespace Kawa.Dataflow;

/// <summary>
/// One event travelling through a pipeline: a value with its key, topic and source metadata.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// A small immutable struct, so passing it between stages allocates nothing. Handlers derive outputs with
/// <see cref="With{TOut}(TOut)"/>, which keeps the key, topic and attributes, so later stages and the
/// destination can still read the source's metadata (subject, sequence, delivery count, ...).
/// </remarks>
/// <param name="Value">The payload.</param>
/// <param name="Key">The partitioning and ordering key; stages configured as key-ordered never run two messages with the same key at once. May be <see langword="null"/>.</param>
/// <param name="Topic">Where the message came from or is going (a subject, a file, a table). May be <see langword="null"/>.</param>
/// <param name="Attributes">Source metadata, readable by every later stage. Never <see langword="null"/> when read: an absent set reads as <see cref="MessageAttributes.Empty"/>.</param>
public readonly record struct Message<T>(T Value, string? Key = null, string? Topic = null, MessageAttributes? Attributes = null)
{
    // Null stands for "none" (so that default(Message<T>) and a message built without attributes are equal); the
    // property reads it as MessageAttributes.Empty, whichever way the message was made (constructor, with, default).
    private readonly MessageAttributes? _attributes = Normalize(Attributes);

    /// <summary>Source metadata; <see cref="MessageAttributes.Empty"/> when the source gave none. Never
    /// <see langword="null"/>: setting it to <see langword="null"/> (for example in a <see langword="with"/> expression)
    /// also reads back as <see cref="MessageAttributes.Empty"/>, as does a <see langword="default"/> message.</summary>
    public MessageAttributes Attributes
    {
        get => _attributes ?? MessageAttributes.Empty;
        init => _attributes = Normalize(value);
    }

    /// <summary>A message with another value and the same key, topic and attributes.</summary>
    /// <typeparam name="TOut">The new payload type.</typeparam>
    /// <param name="value">The new payload.</param>
    public Message<TOut> With<TOut>(TOut value) => new(value, Key, Topic, _attributes);

    private static MessageAttributes? Normalize(MessageAttributes? attributes)
        => ReferenceEquals(attributes, MessageAttributes.Empty) ? null : attributes;
}
