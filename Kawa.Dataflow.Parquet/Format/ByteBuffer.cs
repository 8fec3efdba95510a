using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>A growable byte buffer reused across pages and chunks so steady-state writing does not allocate.</summary>
internal sealed class ByteBuffer
{
    private byte[] _buffer;
    private int _length;

    public ByteBuffer(int capacity = 4096)
    {
        _buffer = [];
        Pooled.Grow(ref _buffer, Math.Max(16, capacity));
    }

    /// <summary>Returns the storage to the pool; the buffer is empty (and reusable) afterwards.</summary>
    public void Release()
    {
        Pooled.Return(ref _buffer);
        _length = 0;
    }

    public int Length => _length;

    public Span<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    public ReadOnlyMemory<byte> WrittenMemory => _buffer.AsMemory(0, _length);

    public void Clear() => _length = 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteByte(byte b)
    {
        if (_length == _buffer.Length)
        {
            Grow(1);
        }

        _buffer[_length++] = b;
    }

    public void Write(ReadOnlySpan<byte> data)
    {
        if (_length + data.Length > _buffer.Length)
        {
            Grow(data.Length);
        }

        data.CopyTo(_buffer.AsSpan(_length));
        _length += data.Length;
    }

    public void WriteInt32LittleEndian(int v) => BinaryPrimitives.WriteInt32LittleEndian(GetSpan(4), v);

    public void WriteInt64LittleEndian(long v) => BinaryPrimitives.WriteInt64LittleEndian(GetSpan(8), v);

    /// <summary>Reserves <paramref name="n"/> bytes at the end and returns them for the caller to fill.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> GetSpan(int n)
    {
        if (_length + n > _buffer.Length)
        {
            Grow(n);
        }

        var s = _buffer.AsSpan(_length, n);
        _length += n;
        return s;
    }

    /// <summary>Returns free space of at least <paramref name="n"/> bytes without committing it; see <see cref="Advance"/>.</summary>
    public Span<byte> GetFreeSpan(int n)
    {
        if (_length + n > _buffer.Length)
        {
            Grow(n);
        }

        return _buffer.AsSpan(_length);
    }

    public void Advance(int n) => _length += n;

    public void SetLength(int n) => _length = n;

    private void Grow(int extra)
    {
        long need = (long)_length + extra;
        if (need > Array.MaxLength)
        {
            throw new InvalidOperationException("A Parquet buffer would exceed 2 GiB; lower the row group size (RowGroupMaxBytes/RowGroupMaxRows).");
        }

        var old = _buffer;
        var length = _length;
        _buffer = [];
        Pooled.Grow(ref _buffer, (int)need);
        old.AsSpan(0, length).CopyTo(_buffer);
        Pooled.Return(ref old);
    }
}
