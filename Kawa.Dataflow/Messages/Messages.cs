using System.Collections;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow;

/// <summary>
/// Zero, one or many messages: what a handler emits for one input, and what a destination receives for one ack.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// A struct that holds a single message inline, so the common one-in-one-out case allocates nothing.
/// Convert implicitly from a <see cref="Message{T}"/> or an array; <see cref="None"/> (or <c>default</c>) is empty.
/// </remarks>
public readonly struct Messages<T> : IReadOnlyList<Message<T>>
{
    private readonly Message<T> _single;
    private readonly IReadOnlyList<Message<T>>? _many;
    private readonly int _count;

    /// <summary>One message.</summary>
    public Messages(Message<T> message)
    {
        _single = message;
        _many = null;
        _count = 1;
    }

    /// <summary>Any number of messages, in order. The list is not copied: do not change it afterwards.</summary>
    public Messages(IReadOnlyList<Message<T>> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        _single = default;
        _many = messages;
        _count = messages.Count;
    }

    /// <summary>No messages: the input is finished and the pipeline acks it.</summary>
    public static Messages<T> None => default;

    /// <inheritdoc/>
    public int Count => _count;

    /// <summary>Whether there are no messages.</summary>
    public bool IsEmpty => _count == 0;

    /// <inheritdoc/>
    public Message<T> this[int index]
    {
        get
        {
            if ((uint)index >= (uint)_count)
            {
                ThrowIndex();
            }

            return _many is null ? _single : _many[index];
        }
    }

    /// <summary>One message.</summary>
    public static implicit operator Messages<T>(Message<T> message) => new(message);

    /// <summary>The array's messages, in order.</summary>
    public static implicit operator Messages<T>(Message<T>[] messages) => new(messages);

    /// <summary>The list's messages, in order.</summary>
    public static implicit operator Messages<T>(List<Message<T>> messages) => new(messages);

    /// <summary>Enumerates without allocating.</summary>
    public Enumerator GetEnumerator() => new(this);

    IEnumerator<Message<T>> IEnumerable<Message<T>>.GetEnumerator() => GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowIndex() => throw new ArgumentOutOfRangeException("index");

    /// <summary>Enumerator over <see cref="Messages{T}"/>.</summary>
    public struct Enumerator : IEnumerator<Message<T>>
    {
        private readonly Messages<T> _messages;
        private int _index;

        internal Enumerator(Messages<T> messages)
        {
            _messages = messages;
            _index = -1;
        }

        /// <inheritdoc/>
        public readonly Message<T> Current => _messages[_index];

        readonly object IEnumerator.Current => Current;

        /// <inheritdoc/>
        public bool MoveNext() => ++_index < _messages.Count;

        /// <inheritdoc/>
        public void Reset() => _index = -1;

        /// <inheritdoc/>
        public readonly void Dispose()
        {
        }
    }
}
