using System.Buffers;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Dataflow;

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

    /// <summary>
    /// Splits into up to <paramref name="parts"/> consecutive segments, so a stage running its handler in parallel gets
    /// one segment per worker even when few messages are about (a segment is handled sequentially).
    /// </summary>
    public void SplitInto(int parts, List<Segment<T>> output)
    {
        parts = Math.Min(parts, Count);
        if (parts <= 1)
        {
            output.Add(this);
            return;
        }

        var size = (Count + parts - 1) / parts;

        // The first part keeps the original array; the copied tail is cleared when the array goes back to the pool.
        output.Add(new Segment<T>(Items, size));
        for (var start = size; start < Count; start += size)
        {
            var length = Math.Min(size, Count - start);
            var items = Rent(length);
            Array.Copy(Items, start, items, 0, length);
            output.Add(new Segment<T>(items, length));
        }
    }

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

/// <summary>
/// A stage's input. Staged: its block, and how many segments it works on at once (producers split segments to match).
/// Run to completion: <see cref="Inline"/> carries a segment through this stage and every later one on the caller's
/// thread, and <see cref="Parallelism"/> is how many callers may do so at once.
/// </summary>
internal readonly record struct StageInput<T>(ITargetBlock<Segment<T>>? Block, int Parallelism, Func<Segment<T>, ValueTask>? Inline = null)
{
    /// <summary>The input of a stage that runs on its caller's thread.</summary>
    public static StageInput<T> RunInline(Func<Segment<T>, ValueTask> process, int parallelism) => new(null, parallelism, process);
}

/// <summary>Collects a stage's outputs into segments, split for the next stage's parallelism.</summary>
internal struct SegmentWriter<T>(int segmentSize, int parallelism)
{
    private Envelope<T>[]? _current;
    private int _count;
    private List<Segment<T>>? _full;
    private bool _inPlace;

    /// <summary>
    /// Accounting of inputs the stage settled itself (a handler that emitted nothing), reported once per segment by the
    /// stage rather than once per message.
    /// </summary>
    public ObserverTally Settled;

    public int Total { get; private set; }

    /// <summary>Whether the input segment's array now carries outputs (so the stage must not return it to the pool).</summary>
    public bool HoldsInput { get; private set; }

    /// <summary>
    /// Writes outputs over the input segment's array while they do not overtake the input being read (the common
    /// one-in-one-out case): saves renting, filling and moving a second array per segment.
    /// </summary>
    public void WriteInPlace(Envelope<T>[] input)
    {
        _current = input;
        _inPlace = true;
        HoldsInput = true;
    }

    /// <summary>Adds an output of the input at <paramref name="readIndex"/>.</summary>
    public void Add(Message<T> message, AckToken ack, int readIndex)
    {
        if (_inPlace && _count > readIndex)
        {
            // Would overwrite inputs not read yet: continue in an array of our own.
            var own = Segment<T>.Rent(segmentSize);
            Array.Copy(_current!, own, _count);
            _current = own;
            _inPlace = false;
            HoldsInput = false;
        }

        _current ??= Segment<T>.Rent(segmentSize);
        _current[_count++] = new Envelope<T>(message, ack);
        Total++;
        if (_count == segmentSize)
        {
            (_full ??= new List<Segment<T>>(2)).Add(new Segment<T>(_current, _count));
            _current = null;
            _count = 0;
            _inPlace = false;
        }
    }

    public readonly IEnumerable<Segment<T>> ToEnumerable()
    {
        if (_full is null && parallelism <= 1)
        {
            return _current is null ? [] : new[] { new Segment<T>(_current, _count) };
        }

        var all = _full ?? [];
        if (_current is not null)
        {
            all.Add(new Segment<T>(_current, _count));
        }

        if (parallelism <= 1 || all.Count >= parallelism)
        {
            return all;
        }

        var split = new List<Segment<T>>(parallelism);
        foreach (var segment in all)
        {
            segment.SplitInto(parallelism, split);
        }

        return split;
    }
}
