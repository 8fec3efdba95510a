using System.Buffers.Text;
using System.Text;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>What a JetStream message's ack subject says about it.</summary>
/// <remarks>
/// Two forms (ADR-15): v1 <c>$JS.ACK.&lt;stream&gt;.&lt;consumer&gt;.&lt;delivered&gt;.&lt;sseq&gt;.&lt;cseq&gt;.&lt;tm&gt;.&lt;pending&gt;</c>
/// (9 tokens) and v2 <c>$JS.ACK.&lt;domain&gt;.&lt;account hash&gt;.&lt;stream&gt;.&lt;consumer&gt;.&lt;delivered&gt;.&lt;sseq&gt;.&lt;cseq&gt;.&lt;tm&gt;.&lt;pending&gt;[.&lt;random&gt;…]</c>
/// (11 or more tokens; domain <c>_</c> means none). Timestamps are nanoseconds since the Unix epoch.
/// </remarks>
internal sealed record AckMetadata(
    string? Domain,
    string? AccountHash,
    string Stream,
    string Consumer,
    long NumDelivered,
    ulong StreamSequence,
    ulong ConsumerSequence,
    DateTimeOffset Timestamp,
    ulong NumPending)
{
    /// <summary>The timestamp in nanoseconds since the Unix epoch, as the server sent it.</summary>
    public long TimestampNanoseconds { get; init; }

    public static bool TryParse(string? replyTo, out AckMetadata? metadata)
    {
        metadata = null;
        return replyTo is not null && TryParse(Encoding.UTF8.GetBytes(replyTo), null, null, out metadata);
    }

    /// <summary>Parses an ack subject as the server sent it, without splitting it into strings.</summary>
    /// <param name="replyTo">The ack subject, UTF-8.</param>
    /// <param name="knownStream">A stream name to reuse when the subject names it (no new string per message).</param>
    /// <param name="knownConsumer">A consumer name to reuse likewise.</param>
    /// <param name="metadata">The fields, when this is an ack subject.</param>
    public static bool TryParse(ReadOnlySpan<byte> replyTo, string? knownStream, string? knownConsumer, out AckMetadata? metadata)
    {
        metadata = null;
        if (!replyTo.StartsWith("$JS.ACK."u8))
        {
            return false;
        }

        // At most 11 fixed tokens are read; a v2 subject may carry more (random suffix), which are ignored.
        Span<Range> tokens = stackalloc Range[12];
        var count = 0;
        var start = 0;
        for (var i = 0; i <= replyTo.Length; i++)
        {
            if (i == replyTo.Length || replyTo[i] == (byte)'.')
            {
                if (count < tokens.Length)
                {
                    tokens[count] = new Range(start, i);
                }

                count++;
                start = i + 1;
            }
        }

        int offset;
        string? domain = null;
        string? account = null;
        if (count == 9)
        {
            offset = 2;
        }
        else if (count >= 11)
        {
            var domainToken = replyTo[tokens[2]];
            domain = domainToken.SequenceEqual("_"u8) ? null : Encoding.UTF8.GetString(domainToken);
            account = Encoding.UTF8.GetString(replyTo[tokens[3]]);
            offset = 4;
        }
        else
        {
            return false;
        }

        var streamToken = replyTo[tokens[offset]];
        var consumerToken = replyTo[tokens[offset + 1]];
        if (streamToken.IsEmpty || consumerToken.IsEmpty
            || !TryNumber(replyTo[tokens[offset + 2]], out var delivered)
            || !TryNumber(replyTo[tokens[offset + 3]], out var streamSeq)
            || !TryNumber(replyTo[tokens[offset + 4]], out var consumerSeq)
            || !TryNumber(replyTo[tokens[offset + 5]], out var nanos)
            || !TryNumber(replyTo[tokens[offset + 6]], out var pending)
            || delivered > long.MaxValue || nanos > long.MaxValue)
        {
            return false;
        }

        metadata = new AckMetadata(domain, account, Name(streamToken, knownStream), Name(consumerToken, knownConsumer), (long)delivered, streamSeq, consumerSeq,
            DateTimeOffset.UnixEpoch.AddTicks((long)nanos / 100), pending)
        {
            TimestampNanoseconds = (long)nanos,
        };
        return true;

        static string Name(ReadOnlySpan<byte> token, string? known)
            => known is not null && token.Length == known.Length && Ascii.Equals(token, known) ? known : Encoding.UTF8.GetString(token);

        static bool TryNumber(ReadOnlySpan<byte> token, out ulong value)
        {
            // Digits only (no sign, no spaces), as the server writes them.
            value = 0;
            return !token.IsEmpty && token.IndexOfAnyExceptInRange((byte)'0', (byte)'9') < 0
                && Utf8Parser.TryParse(token, out value, out var consumed) && consumed == token.Length;
        }
    }

    /// <exception cref="FormatException">Not a JetStream ack subject.</exception>
    public static AckMetadata Parse(string? replyTo)
        => TryParse(replyTo, out var metadata) ? metadata! : throw NotAnAckSubject(replyTo);

    internal static FormatException NotAnAckSubject(string? replyTo)
        => new($"'{replyTo}' is not a JetStream ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>).");
}
