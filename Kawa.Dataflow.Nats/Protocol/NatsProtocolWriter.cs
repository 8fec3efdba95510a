using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Kawa.Dataflow.Nats.Protocol;

/// <summary>Writes client-to-server operations into a buffer writer (the connection's outbound pipe).</summary>
/// <remarks>Each method writes one complete operation, so the buffer always ends on an operation boundary.</remarks>
internal static class NatsProtocolWriter
{
    private const int MaxNumberLength = 20;

    public static void WritePing(IBufferWriter<byte> writer) => WriteLiteral(writer, "PING\r\n"u8);

    public static void WritePong(IBufferWriter<byte> writer) => WriteLiteral(writer, "PONG\r\n"u8);

    public static void WriteConnect(IBufferWriter<byte> writer, ReadOnlySpan<byte> json)
    {
        var span = writer.GetSpan(json.Length + 10);
        "CONNECT "u8.CopyTo(span);
        json.CopyTo(span[8..]);
        "\r\n"u8.CopyTo(span[(8 + json.Length)..]);
        writer.Advance(json.Length + 10);
    }

    /// <summary>PUB (no headers) or HPUB (headers).</summary>
    public static void WritePublish(IBufferWriter<byte> writer, string subject, string? replyTo, NatsHeaders? headers, in ReadOnlySequence<byte> payload)
    {
        var headerSize = headers?.GetByteCount() ?? 0;
        var total = headerSize + payload.Length;
        var subjectBytes = Encoding.UTF8.GetByteCount(subject);
        var replyBytes = replyTo is null ? 0 : Encoding.UTF8.GetByteCount(replyTo) + 1;
        var lineMax = 5 + subjectBytes + replyBytes + (2 * (MaxNumberLength + 1)) + 2;
        var span = writer.GetSpan(lineMax);
        var pos = 0;
        if (headers is null)
        {
            "PUB "u8.CopyTo(span);
            pos = 4;
        }
        else
        {
            "HPUB "u8.CopyTo(span);
            pos = 5;
        }

        pos += Encoding.UTF8.GetBytes(subject, span[pos..]);
        span[pos++] = (byte)' ';
        if (replyTo is not null)
        {
            pos += Encoding.UTF8.GetBytes(replyTo, span[pos..]);
            span[pos++] = (byte)' ';
        }

        if (headers is not null)
        {
            Utf8Formatter.TryFormat(headerSize, span[pos..], out var n);
            pos += n;
            span[pos++] = (byte)' ';
        }

        Utf8Formatter.TryFormat(total, span[pos..], out var written);
        pos += written;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        writer.Advance(pos);

        headers?.WriteTo(writer);
        foreach (var segment in payload)
        {
            writer.Write(segment.Span);
        }

        WriteLiteral(writer, "\r\n"u8);
    }

    /// <summary>PUB of a small body to a subject already in UTF-8 (an ack reply subject the server gave us): nothing
    /// to transcode or validate, nothing allocated.</summary>
    public static void WritePublish(IBufferWriter<byte> writer, ReadOnlySpan<byte> subject, ReadOnlySpan<byte> body)
    {
        var size = 4 + subject.Length + 1 + MaxNumberLength + 2 + body.Length + 2;
        var span = writer.GetSpan(size);
        "PUB "u8.CopyTo(span);
        var pos = 4;
        subject.CopyTo(span[pos..]);
        pos += subject.Length;
        span[pos++] = (byte)' ';
        Utf8Formatter.TryFormat(body.Length, span[pos..], out var n);
        pos += n;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        body.CopyTo(span[pos..]);
        pos += body.Length;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        writer.Advance(pos);
    }

    public static void WriteSubscribe(IBufferWriter<byte> writer, string subject, string? queueGroup, long sid)
    {
        var span = writer.GetSpan(4 + Encoding.UTF8.GetByteCount(subject) + (queueGroup is null ? 0 : Encoding.UTF8.GetByteCount(queueGroup) + 1) + MaxNumberLength + 4);
        "SUB "u8.CopyTo(span);
        var pos = 4;
        pos += Encoding.UTF8.GetBytes(subject, span[pos..]);
        span[pos++] = (byte)' ';
        if (queueGroup is not null)
        {
            pos += Encoding.UTF8.GetBytes(queueGroup, span[pos..]);
            span[pos++] = (byte)' ';
        }

        Utf8Formatter.TryFormat(sid, span[pos..], out var n);
        pos += n;
        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        writer.Advance(pos);
    }

    public static void WriteUnsubscribe(IBufferWriter<byte> writer, long sid, long? maxMessages)
    {
        var span = writer.GetSpan(6 + (2 * (MaxNumberLength + 1)) + 2);
        "UNSUB "u8.CopyTo(span);
        var pos = 6;
        Utf8Formatter.TryFormat(sid, span[pos..], out var n);
        pos += n;
        if (maxMessages is { } max)
        {
            span[pos++] = (byte)' ';
            Utf8Formatter.TryFormat(max, span[pos..], out n);
            pos += n;
        }

        span[pos++] = (byte)'\r';
        span[pos++] = (byte)'\n';
        writer.Advance(pos);
    }

    /// <summary>Checks a subject to publish or subscribe to.</summary>
    /// <exception cref="ArgumentException">Empty, or holds whitespace, or has an empty token.</exception>
    public static void ValidateSubject(string subject, string parameterName, bool allowWildcards)
    {
        if (string.IsNullOrEmpty(subject))
        {
            throw new ArgumentException("Subject must not be empty.", parameterName);
        }

        if (subject.AsSpan().IndexOfAny(" \t\r\n") >= 0)
        {
            throw new ArgumentException($"Subject '{subject}' must not contain whitespace.", parameterName);
        }

        if (subject[0] == '.' || subject[^1] == '.' || subject.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Subject '{subject}' has an empty token.", parameterName);
        }

        if (!allowWildcards && subject.AsSpan().IndexOfAny('*', '>') >= 0)
        {
            foreach (var token in subject.Split('.'))
            {
                if (token is "*" or ">")
                {
                    throw new ArgumentException($"Subject '{subject}' holds a wildcard; publish to a concrete subject.", parameterName);
                }
            }
        }
    }

    private static void WriteLiteral(IBufferWriter<byte> writer, ReadOnlySpan<byte> literal)
    {
        literal.CopyTo(writer.GetSpan(literal.Length));
        writer.Advance(literal.Length);
    }
}
