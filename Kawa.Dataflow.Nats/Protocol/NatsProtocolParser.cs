using System.Buffers;
using System.Buffers.Text;
using System.Text;

namespace Kawa.Dataflow.Nats.Protocol;

/// <summary>
/// Incremental parser of the server-to-client protocol: INFO, MSG, HMSG, PING, PONG, +OK, -ERR.
/// </summary>
/// <remarks>
/// <see cref="Parse"/> consumes only complete operations, so a frame split at any byte simply waits for more data:
/// the caller advances its reader to the returned position and marks the whole buffer examined. Nothing is
/// allocated for a message: the handler gets spans over the subject and reply and sequences over headers and
/// payload, and materializes only what it needs.
/// </remarks>
internal sealed class NatsProtocolParser
{
    /// <summary>Longest control line accepted. INFO with many connect_urls can be long; MSG lines are short.</summary>
    public const int MaxControlLine = 1024 * 1024;

    private static ReadOnlySpan<byte> CrLf => "\r\n"u8;

    private byte[] _scratch = new byte[512];

    /// <summary>Parses every complete operation in <paramref name="buffer"/>.</summary>
    /// <returns>The position after the last complete operation.</returns>
    /// <exception cref="NatsProtocolException">The data is not NATS protocol.</exception>
    public SequencePosition Parse(in ReadOnlySequence<byte> buffer, INatsProtocolHandler handler)
    {
        var reader = new SequenceReader<byte>(buffer);
        while (true)
        {
            var start = reader.Position;
            if (!reader.TryReadTo(out ReadOnlySequence<byte> lineSequence, CrLf, advancePastDelimiter: true))
            {
                if (reader.Remaining > MaxControlLine)
                {
                    throw new NatsProtocolException($"Protocol line longer than {MaxControlLine} bytes without CRLF: '{Printable(reader.UnreadSequence)}'.");
                }

                return start;
            }

            var line = Linearize(lineSequence);
            if (line.Length < 2)
            {
                throw new NatsProtocolException($"Unknown protocol operation '{Printable(line)}'.");
            }

            switch (Lower(line[0]))
            {
                case (byte)'m' when IsOp(line, "msg "u8):
                    if (!TryMsg(ref reader, line[4..], hasHeaders: false, handler))
                    {
                        return start;
                    }

                    break;
                case (byte)'h' when IsOp(line, "hmsg "u8):
                    if (!TryMsg(ref reader, line[5..], hasHeaders: true, handler))
                    {
                        return start;
                    }

                    break;
                case (byte)'p' when IsOp(line, "ping"u8) && line.Length == 4:
                    handler.OnPing();
                    break;
                case (byte)'p' when IsOp(line, "pong"u8) && line.Length == 4:
                    handler.OnPong();
                    break;
                case (byte)'+' when IsOp(line, "+ok"u8):
                    handler.OnOk();
                    break;
                case (byte)'-' when IsOp(line, "-err"u8):
                    handler.OnError(Encoding.UTF8.GetString(line[4..].Trim((byte)' ').Trim((byte)'\'')));
                    break;
                case (byte)'i' when IsOp(line, "info "u8):
                    handler.OnInfo(line[5..].Trim((byte)' '));
                    break;
                default:
                    throw new NatsProtocolException($"Unknown protocol operation '{Printable(line)}'.");
            }
        }
    }

    private static bool TryMsg(ref SequenceReader<byte> reader, scoped ReadOnlySpan<byte> args, bool hasHeaders, INatsProtocolHandler handler)
    {
        // MSG <subject> <sid> [reply] <size>  |  HMSG <subject> <sid> [reply] <hdr size> <total size>
        Span<Range> parts = stackalloc Range[6];
        var count = SplitArgs(args, parts);
        var expected = hasHeaders ? 4 : 3;
        if (count != expected && count != expected + 1)
        {
            throw new NatsProtocolException($"Malformed {(hasHeaders ? "HMSG" : "MSG")} arguments '{Printable(args)}'.");
        }

        var subject = args[parts[0]];
        var sid = ParseNumber(args[parts[1]], "sid", args);
        var hasReply = count == expected + 1;
        var replyTo = hasReply ? args[parts[2]] : default;
        var sizeIndex = hasReply ? 3 : 2;
        long headerSize = 0;
        if (hasHeaders)
        {
            headerSize = ParseNumber(args[parts[sizeIndex]], "header size", args);
            sizeIndex++;
        }

        var totalSize = ParseNumber(args[parts[sizeIndex]], "size", args);
        if (headerSize > totalSize)
        {
            throw new NatsProtocolException($"HMSG header size exceeds total size in '{Printable(args)}'.");
        }

        if (reader.Remaining < totalSize + 2)
        {
            return false;
        }

        var body = reader.UnreadSequence.Slice(0, totalSize);
        reader.Advance(totalSize);
        if (!reader.IsNext(CrLf, advancePast: true))
        {
            throw new NatsProtocolException($"Message payload for '{Printable(subject)}' is not followed by CRLF (size {totalSize}).");
        }

        var headers = hasHeaders ? body.Slice(0, headerSize) : ReadOnlySequence<byte>.Empty;
        var payload = hasHeaders ? body.Slice(headerSize) : body;

        // subject/reply may point into _scratch: the handler consumes them before the next line is read.
        handler.OnMsg(subject, sid, replyTo, headers, payload);
        return true;
    }

    private ReadOnlySpan<byte> Linearize(in ReadOnlySequence<byte> sequence)
    {
        if (sequence.IsSingleSegment)
        {
            return sequence.FirstSpan;
        }

        if (_scratch.Length < sequence.Length)
        {
            _scratch = new byte[Math.Max((int)sequence.Length, _scratch.Length * 2)];
        }

        sequence.CopyTo(_scratch);
        return _scratch.AsSpan(0, (int)sequence.Length);
    }

    private static int SplitArgs(ReadOnlySpan<byte> args, Span<Range> parts)
    {
        var count = 0;
        var i = 0;
        while (i < args.Length)
        {
            while (i < args.Length && (args[i] == (byte)' ' || args[i] == (byte)'\t'))
            {
                i++;
            }

            if (i == args.Length)
            {
                break;
            }

            var start = i;
            while (i < args.Length && args[i] != (byte)' ' && args[i] != (byte)'\t')
            {
                i++;
            }

            if (count == parts.Length)
            {
                return count + 1;
            }

            parts[count++] = new Range(start, i);
        }

        return count;
    }

    private static long ParseNumber(ReadOnlySpan<byte> span, string what, ReadOnlySpan<byte> line)
    {
        if (!Utf8Parser.TryParse(span, out long value, out var consumed) || consumed != span.Length || value < 0)
        {
            throw new NatsProtocolException($"Unreadable {what} in message arguments '{Printable(line)}'.");
        }

        return value;
    }

    private static bool IsOp(ReadOnlySpan<byte> line, ReadOnlySpan<byte> lowerOp)
    {
        if (line.Length < lowerOp.Length)
        {
            return false;
        }

        for (var i = 0; i < lowerOp.Length; i++)
        {
            if (Lower(line[i]) != lowerOp[i] && !(lowerOp[i] == (byte)' ' && line[i] == (byte)'\t'))
            {
                return false;
            }
        }

        return true;
    }

    private static byte Lower(byte b) => b is >= (byte)'A' and <= (byte)'Z' ? (byte)(b | 0x20) : b;

    internal static string Printable(ReadOnlySpan<byte> span)
    {
        var slice = span[..Math.Min(span.Length, 80)];
        var chars = new char[slice.Length];
        for (var i = 0; i < slice.Length; i++)
        {
            chars[i] = slice[i] is >= 0x20 and < 0x7f ? (char)slice[i] : '?';
        }

        return new string(chars) + (span.Length > 80 ? "..." : string.Empty);
    }

    private static string Printable(in ReadOnlySequence<byte> sequence)
    {
        var slice = sequence.Slice(0, Math.Min(sequence.Length, 81));
        return Printable(slice.ToArray());
    }
}
