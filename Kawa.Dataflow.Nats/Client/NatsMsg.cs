using System.Buffers;
using System.Text;
using Kawa.Dataflow.Nats.Protocol;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>A received core NATS message; owns its payload bytes.</summary>
/// <remarks>A message from the wire keeps its reply subject and header block as bytes (one buffer for both) and
/// makes the <see cref="ReplyTo"/> string and the parsed <see cref="Headers"/> on first use: a subscriber that never
/// reads them pays for no string. Safe to read from several threads (a race makes equal values, one is kept).</remarks>
internal sealed class NatsMsg
{
    // Reply subject bytes, then the header block: [0, _replyLength) and [_replyLength, _replyLength + _headersLength).
    private readonly byte[]? _wire;
    private readonly int _replyLength;
    private readonly int _headersLength;
    private string? _replyTo;
    private NatsHeaders? _headers;

    public NatsMsg(string subject, string? replyTo, NatsHeaders? headers, byte[] data)
    {
        Subject = subject;
        _replyTo = replyTo;
        _headers = headers;
        Data = data;
    }

    private NatsMsg(string subject, byte[]? wire, int replyLength, int headersLength, byte[] data)
    {
        Subject = subject;
        _wire = wire;
        _replyLength = replyLength;
        _headersLength = headersLength;
        Data = data;
    }

    public string Subject { get; }

    /// <summary>The reply subject, or null (made into a string on first use).</summary>
    public string? ReplyTo => _replyTo ?? (_replyLength == 0 ? null : _replyTo = Encoding.UTF8.GetString(_wire!, 0, _replyLength));

    /// <summary>The headers, or null when the message has none (parsed on first use of their fields).</summary>
    public NatsHeaders? Headers
    {
        get
        {
            if (_headers is not null || _headersLength == 0)
            {
                return _headers;
            }

            var created = NatsHeaders.FromReceived(_wire.AsMemory(_replyLength, _headersLength));
            return Interlocked.CompareExchange(ref _headers, created, null) ?? created;
        }
    }

    public byte[] Data { get; }

    /// <summary>Whether <see cref="ReplyTo"/> is set, without making the string.</summary>
    internal bool HasReplyTo => _replyLength > 0 || _replyTo is not null;

    /// <summary>A message from a parsed frame: copies what it keeps (the spans are valid only during the call).</summary>
    internal static NatsMsg FromWire(string subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
    {
        var headersLength = (int)headers.Length;
        byte[]? wire = null;
        if (replyTo.Length + headersLength > 0)
        {
            wire = new byte[replyTo.Length + headersLength];
            replyTo.CopyTo(wire);
            headers.CopyTo(wire.AsSpan(replyTo.Length));
        }

        return new NatsMsg(subject, wire, replyTo.Length, headersLength, payload.IsEmpty ? [] : payload.ToArray());
    }

    public override string ToString() => $"NatsMsg {{ Subject = {Subject}, Bytes = {Data.Length} }}";
}
