using System.Buffers;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// The bytes of one S3 part while it fills: pooled chunks of <see cref="ChunkSize"/> bytes, rented as bytes arrive and
/// returned when the part is uploaded, so an open file holds about what it has not uploaded yet, not a whole part.
/// </summary>
/// <remarks>Written by one writer at a time; <see cref="HeldBytes"/> may be read from any thread.</remarks>
internal sealed class S3PartBuffer(LakeMemoryGauge? gauge = null)
{
    /// <summary>Bytes per chunk: the most a file holds beyond its pending bytes.</summary>
    public const int ChunkSize = 16 * 1024;

    private readonly List<byte[]> _chunks = [];
    private long _held;

    /// <summary>Bytes in the part.</summary>
    public int Length { get; private set; }

    /// <summary>Bytes of memory the part holds now (its chunks).</summary>
    public long HeldBytes => Volatile.Read(ref _held);

    /// <summary>Appends <paramref name="data"/>, renting chunks as needed.</summary>
    public void Append(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            var offset = Length % ChunkSize;
            if (offset == 0 && Length / ChunkSize == _chunks.Count)
            {
                _chunks.Add(ArrayPool<byte>.Shared.Rent(ChunkSize));
                Volatile.Write(ref _held, (long)_chunks.Count * ChunkSize);
                gauge?.Add(ChunkSize);
            }
            var count = Math.Min(data.Length, ChunkSize - offset);
            data[..count].CopyTo(_chunks[Length / ChunkSize].AsSpan(offset));
            Length += count;
            data = data[count..];
        }
    }

    /// <summary>A seekable read-only view of the part's bytes (the SDK reads it to sign, and again to send or retry).</summary>
    public Stream OpenRead() => new ReadStream(this);

    /// <summary>Empties the part and returns its chunks to the pool.</summary>
    public void Clear()
    {
        foreach (var chunk in _chunks)
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        gauge?.Add(-(long)_chunks.Count * ChunkSize);
        _chunks.Clear();
        Length = 0;
        Volatile.Write(ref _held, 0);
    }

    private sealed class ReadStream(S3PartBuffer part) : Stream
    {
        private readonly int _length = part.Length;
        private long _position;

        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => _length;

        public override long Position
        {
            get => _position;
            set
            {
                ArgumentOutOfRangeException.ThrowIfNegative(value);
                _position = value;
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var total = 0;
            while (!buffer.IsEmpty && _position < _length)
            {
                var index = (int)(_position / ChunkSize);
                var offset = (int)(_position % ChunkSize);
                var count = (int)Math.Min(Math.Min(buffer.Length, ChunkSize - offset), _length - _position);
                part._chunks[index].AsSpan(offset, count).CopyTo(buffer);
                buffer = buffer[count..];
                _position += count;
                total += count;
            }
            return total;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Task.FromResult(Read(buffer.AsSpan(offset, count)));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span));

        public override long Seek(long offset, SeekOrigin origin)
        {
            Position = origin switch
            {
                SeekOrigin.Begin => offset,
                SeekOrigin.Current => _position + offset,
                _ => _length + offset,
            };
            return _position;
        }

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
