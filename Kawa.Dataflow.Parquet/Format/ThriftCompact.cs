using System.Buffers.Binary;


namespace Kawa.Dataflow.Parquet.Format;

/// <summary>Type codes of the Thrift compact protocol (the low nibble of a field header).</summary>
internal enum ThriftType : byte
{
    Stop = 0,
    BoolTrue = 1,
    BoolFalse = 2,
    Byte = 3,
    I16 = 4,
    I32 = 5,
    I64 = 6,
    Double = 7,
    Binary = 8,
    List = 9,
    Set = 10,
    Map = 11,
    Struct = 12,
}

/// <summary>
/// Writes the Thrift compact protocol: zigzag varints, field-id deltas, and booleans folded into the field
/// header. Parquet metadata (footer and page headers) is serialized with it.
/// </summary>
internal sealed class ThriftCompactWriter
{
    private readonly ByteBuffer _out;
    private readonly Stack<short> _lastFieldIds = new();
    private short _lastFieldId;

    public ThriftCompactWriter(ByteBuffer output) => _out = output;

    public void StructBegin()
    {
        _lastFieldIds.Push(_lastFieldId);
        _lastFieldId = 0;
    }

    public void StructEnd()
    {
        _out.WriteByte((byte)ThriftType.Stop);
        _lastFieldId = _lastFieldIds.Pop();
    }

    public void FieldHeader(short id, ThriftType type)
    {
        int delta = id - _lastFieldId;
        if (delta is > 0 and <= 15)
        {
            _out.WriteByte((byte)((delta << 4) | (byte)type));
        }
        else
        {
            _out.WriteByte((byte)type);
            WriteVarInt(ZigZag(id));
        }

        _lastFieldId = id;
    }

    public void Bool(short id, bool value) => FieldHeader(id, value ? ThriftType.BoolTrue : ThriftType.BoolFalse);

    public void I32(short id, int value)
    {
        FieldHeader(id, ThriftType.I32);
        WriteVarInt(ZigZag(value));
    }

    public void I8(short id, sbyte value)
    {
        FieldHeader(id, ThriftType.Byte);
        _out.WriteByte((byte)value);
    }

    public void I16(short id, short value)
    {
        FieldHeader(id, ThriftType.I16);
        WriteVarInt(ZigZag(value));
    }

    public void I64(short id, long value)
    {
        FieldHeader(id, ThriftType.I64);
        WriteVarInt(ZigZag(value));
    }

    public void Binary(short id, ReadOnlySpan<byte> value)
    {
        FieldHeader(id, ThriftType.Binary);
        BinaryValue(value);
    }

    public void String(short id, string value)
    {
        FieldHeader(id, ThriftType.Binary);
        StringValue(value);
    }

    /// <summary>Begins a struct-valued field; the caller writes the fields and calls <see cref="StructEnd"/>.</summary>
    public void StructField(short id)
    {
        FieldHeader(id, ThriftType.Struct);
        StructBegin();
    }

    /// <summary>Writes an empty struct field (used for unions of marker structs such as <c>MICROS</c>).</summary>
    public void EmptyStructField(short id)
    {
        StructField(id);
        StructEnd();
    }

    public void ListField(short id, ThriftType elementType, int count)
    {
        FieldHeader(id, ThriftType.List);
        ListHeader(elementType, count);
    }

    public void ListHeader(ThriftType elementType, int count)
    {
        if (count < 15)
        {
            _out.WriteByte((byte)((count << 4) | (byte)elementType));
        }
        else
        {
            _out.WriteByte((byte)(0xF0 | (byte)elementType));
            WriteVarInt((ulong)count);
        }
    }

    public void I32Value(int value) => WriteVarInt(ZigZag(value));

    public void StringValue(string value)
    {
        int max = System.Text.Encoding.UTF8.GetMaxByteCount(value.Length);
        if (max <= 256)
        {
            Span<byte> tmp = stackalloc byte[max];
            int n = System.Text.Encoding.UTF8.GetBytes(value, tmp);
            BinaryValue(tmp[..n]);
        }
        else
        {
            BinaryValue(System.Text.Encoding.UTF8.GetBytes(value));
        }
    }

    public void BinaryValue(ReadOnlySpan<byte> value)
    {
        WriteVarInt((ulong)value.Length);
        _out.Write(value);
    }

    private static ulong ZigZag(long v) => (ulong)((v << 1) ^ (v >> 63));

    private void WriteVarInt(ulong v)
    {
        while (v >= 0x80)
        {
            _out.WriteByte((byte)(v | 0x80));
            v >>= 7;
        }

        _out.WriteByte((byte)v);
    }
}

/// <summary>Reads the Thrift compact protocol from a span; unknown fields are skipped so newer writers' metadata reads.</summary>
internal ref struct ThriftCompactReader
{
    private readonly ReadOnlySpan<byte> _data;
    private int _pos;
    private short _lastFieldId;
    private bool _pendingBool;
    private int _depth;

    public ThriftCompactReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _pos = 0;
        _lastFieldId = 0;
        _pendingBool = false;
        _depth = 0;
    }

    /// <summary>Bytes consumed so far.</summary>
    public readonly int Position => _pos;

    /// <summary>Enters a struct; returns the saved field id to pass to <see cref="StructEnd"/>.</summary>
    public short StructBegin()
    {
        if (++_depth > 64)
        {
            throw new InvalidDataException("Parquet metadata is nested more than 64 levels deep; the file is corrupt.");
        }

        short saved = _lastFieldId;
        _lastFieldId = 0;
        return saved;
    }

    public void StructEnd(short saved)
    {
        _depth--;
        _lastFieldId = saved;
    }

    /// <summary>Reads the next field header; returns false at the struct's stop byte.</summary>
    public bool NextField(out short id, out ThriftType type)
    {
        byte b = ReadByte();
        if (b == 0)
        {
            id = 0;
            type = ThriftType.Stop;
            return false;
        }

        type = (ThriftType)(b & 0x0F);
        int delta = b >> 4;
        id = delta != 0 ? (short)(_lastFieldId + delta) : (short)UnZigZag(ReadVarInt());
        _lastFieldId = id;
        if (type is ThriftType.BoolTrue or ThriftType.BoolFalse)
        {
            _pendingBool = type == ThriftType.BoolTrue;
        }

        return true;
    }

    public readonly bool ReadBool() => _pendingBool;

    public int ReadI32() => checked((int)UnZigZag(ReadVarInt()));

    public long ReadI64() => UnZigZag(ReadVarInt());

    public sbyte ReadI8() => (sbyte)ReadByte();

    public double ReadDouble()
    {
        var v = BinaryPrimitives.ReadDoubleLittleEndian(Take(8));
        return v;
    }

    public ReadOnlySpan<byte> ReadBinary()
    {
        ulong len = ReadVarInt();
        if (len > int.MaxValue)
        {
            throw new InvalidDataException("Parquet metadata holds a binary field longer than 2 GiB; the file is corrupt.");
        }

        return Take((int)len);
    }

    public string ReadString() => System.Text.Encoding.UTF8.GetString(ReadBinary());

    public byte[] ReadBinaryCopy() => ReadBinary().ToArray();

    public int ReadListHeader(out ThriftType elementType)
    {
        byte b = ReadByte();
        elementType = (ThriftType)(b & 0x0F);
        int size = b >> 4;
        if (size == 15)
        {
            ulong n = ReadVarInt();
            if (n > int.MaxValue)
            {
                throw new InvalidDataException("Parquet metadata holds a list longer than int.MaxValue; the file is corrupt.");
            }

            size = (int)n;
        }

        return size;
    }

    /// <summary>Reads a list element that is a boolean (compact protocol: one byte, 1 = true).</summary>
    public bool ReadBoolElement() => ReadByte() == 1;

    public void Skip(ThriftType type)
    {
        switch (type)
        {
            case ThriftType.BoolTrue:
            case ThriftType.BoolFalse:
                break;
            case ThriftType.Byte:
                ReadByte();
                break;
            case ThriftType.I16:
            case ThriftType.I32:
            case ThriftType.I64:
                ReadVarInt();
                break;
            case ThriftType.Double:
                Take(8);
                break;
            case ThriftType.Binary:
                ReadBinary();
                break;
            case ThriftType.List:
            case ThriftType.Set:
                {
                    int n = ReadListHeader(out var et);
                    for (int i = 0; i < n; i++)
                    {
                        if (et is ThriftType.BoolTrue or ThriftType.BoolFalse)
                        {
                            ReadByte();
                        }
                        else
                        {
                            Skip(et);
                        }
                    }

                    break;
                }

            case ThriftType.Map:
                {
                    ulong n = ReadVarInt();
                    if (n == 0)
                    {
                        break;
                    }

                    byte kv = ReadByte();
                    var kt = (ThriftType)(kv >> 4);
                    var vt = (ThriftType)(kv & 0x0F);
                    for (ulong i = 0; i < n; i++)
                    {
                        Skip(kt);
                        Skip(vt);
                    }

                    break;
                }

            case ThriftType.Struct:
                {
                    short saved = StructBegin();
                    while (NextField(out _, out var ft))
                    {
                        Skip(ft);
                    }

                    StructEnd(saved);
                    break;
                }

            default:
                throw new InvalidDataException($"Parquet metadata holds unknown Thrift type code {(int)type}; the file is corrupt.");
        }
    }

    private static long UnZigZag(ulong v) => (long)(v >> 1) ^ -(long)(v & 1);

    private byte ReadByte()
    {
        if (_pos >= _data.Length)
        {
            throw new InvalidDataException("Parquet metadata ends unexpectedly; the file is truncated or corrupt.");
        }

        return _data[_pos++];
    }

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _pos + n > _data.Length)
        {
            throw new InvalidDataException("Parquet metadata ends unexpectedly; the file is truncated or corrupt.");
        }

        var s = _data.Slice(_pos, n);
        _pos += n;
        return s;
    }

    private ulong ReadVarInt()
    {
        ulong result = 0;
        int shift = 0;
        while (true)
        {
            byte b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return result;
            }

            shift += 7;
            if (shift > 63)
            {
                throw new InvalidDataException("Parquet metadata holds a varint longer than 10 bytes; the file is corrupt.");
            }
        }
    }
}
