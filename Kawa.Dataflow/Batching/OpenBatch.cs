using System.Collections;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow;

/// <summary>
/// The batch a <see cref="BatchingDestination{T}"/> is filling: each message with its owner (the message's own
/// <see cref="AckToken"/>, or the <see cref="AckGroup"/> of a send of several). Not thread-safe: the sink's gate guards it.
/// </summary>
/// <remarks>
/// Messages are stored in chunks that stay below the large object heap's threshold: a large array per batch would make
/// the GC run a full (gen 2) collection over the whole heap every few batches, which costs more than everything else
/// the sink does. A batch that fits in one chunk is handed to the flusher as a plain array.
/// </remarks>
internal sealed class OpenBatch<T>
{
    private const int MaxChunkBytes = 64 * 1024;

    private readonly int _chunkLength;
    private readonly int _shift;
    private readonly List<Message<T>[]> _messageChunks = [];
    private readonly List<object[]> _ownerChunks = [];
    private Message<T>[] _messages = [];
    private object[] _owners = [];
    private int _index;
    private int _count;

    public OpenBatch(int maxCount)
    {
        var fits = 1 << BitOperations.Log2((uint)Math.Max(1, MaxChunkBytes / Unsafe.SizeOf<Message<T>>()));
        if (maxCount <= fits)
        {
            _chunkLength = maxCount;
            _shift = 0;
        }
        else
        {
            _chunkLength = fits;
            _shift = BitOperations.Log2((uint)fits);
        }
    }

    public int Count => _count;

    public void Add(in Message<T> message, object owner)
    {
        if (_index == _messages.Length)
        {
            NextChunk();
        }

        _messages[_index] = message;
        _owners[_index] = owner;
        _index++;
        _count++;
    }

    /// <summary>Hands over what was added, as the batch's messages and its settlement, and starts empty again.</summary>
    public (IReadOnlyList<Message<T>> Messages, BatchSettlement Settlement) Close(Action<BatchSettlement>? onSettled)
    {
        Message<T>[] lastMessages;
        object[] lastOwners;
        if (_index == _messages.Length)
        {
            // A full chunk goes with the batch as it is; the next batch gets new ones.
            lastMessages = _messages;
            lastOwners = _owners;
            _messages = [];
            _owners = [];
        }
        else
        {
            // A partial one is copied (an age or byte trigger, or the drain): the chunk is kept for the next batch.
            lastMessages = _messages.AsSpan(0, _index).ToArray();
            lastOwners = _owners.AsSpan(0, _index).ToArray();
            Array.Clear(_messages, 0, _index);
            Array.Clear(_owners, 0, _index);
        }

        IReadOnlyList<Message<T>> messages;
        object[][] owners;
        if (_messageChunks.Count == 0)
        {
            messages = lastMessages;
            owners = [lastOwners];
        }
        else
        {
            _messageChunks.Add(lastMessages);
            _ownerChunks.Add(lastOwners);
            messages = new ChunkedList<Message<T>>(_messageChunks.ToArray(), _count, _shift);
            owners = _ownerChunks.ToArray();
            _messageChunks.Clear();
            _ownerChunks.Clear();
        }

        var settlement = new BatchSettlement(owners, _count, onSettled);
        _index = 0;
        _count = 0;
        return (messages, settlement);
    }

    private void NextChunk()
    {
        if (_index > 0)
        {
            _messageChunks.Add(_messages);
            _ownerChunks.Add(_owners);
        }

        _messages = new Message<T>[_chunkLength];
        _owners = new object[_chunkLength];
        _index = 0;
    }
}

/// <summary>A read-only list over equal chunks (all full but the last) of a power-of-two length.</summary>
internal sealed class ChunkedList<TItem>(TItem[][] chunks, int count, int shift) : IReadOnlyList<TItem>
{
    private readonly int _mask = (1 << shift) - 1;

    public int Count => count;

    public TItem this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)count, nameof(index));
            return chunks[index >> shift][index & _mask];
        }
    }

    public IEnumerator<TItem> GetEnumerator()
    {
        foreach (var chunk in chunks)
        {
            foreach (var item in chunk)
            {
                yield return item;
            }
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
