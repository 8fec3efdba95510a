using System.Buffers;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow;

/// <summary>A message with the token that settles it: what travels between stages.</summary>
internal readonly struct Envelope<T>(Message<T> message, AckToken ack)
{
    public readonly Message<T> Message = message;
    public readonly AckToken Ack = ack;
}

/// <summary>
/// Up to <see cref="PipelineOptions.SegmentSize"/> envelopes in a pooled array: the unit blocks exchange, so the
/// per-item cost of Dataflow is paid once per segment rather than once per message.
/// </summary>
internal readonly struct Segment<T>(Envelope<T>[] items, int count)
{
    public readonly Envelope<T>[] Items = items;
    public readonly int Count = count;

    public static Envelope<T>[] Rent(int size) => ArrayPool<Envelope<T>>.Shared.Rent(size);

    public static void Return(Envelope<T>[] items) => ArrayPool<Envelope<T>>.Shared.Return(items, RuntimeHelpers.IsReferenceOrContainsReferences<Envelope<T>>());

    /// <summary>Negatively acks envelopes [from, Count) unless already settled, then returns the array.</summary>
    public void NackRemainingAndReturn(int from)
    {
        for (var i = from; i < Count; i++)
        {
            Items[i].Ack.TryComplete(AckOutcome.Negative());
        }

        Return(Items);
    }
}

/// <summary>Collects a stage's outputs into segments.</summary>
internal struct SegmentWriter<T>(int segmentSize)
{
    private Envelope<T>[]? _current;
    private int _count;
    private List<Segment<T>>? _full;

    public int Total { get; private set; }

    public void Add(Message<T> message, AckToken ack)
    {
        _current ??= Segment<T>.Rent(segmentSize);
        _current[_count++] = new Envelope<T>(message, ack);
        Total++;
        if (_count == segmentSize)
        {
            (_full ??= new List<Segment<T>>(2)).Add(new Segment<T>(_current, _count));
            _current = null;
            _count = 0;
        }
    }

    public readonly IEnumerable<Segment<T>> ToEnumerable()
    {
        if (_full is null)
        {
            return _current is null ? [] : new[] { new Segment<T>(_current, _count) };
        }

        if (_current is not null)
        {
            _full.Add(new Segment<T>(_current, _count));
        }

        return _full;
    }
}
