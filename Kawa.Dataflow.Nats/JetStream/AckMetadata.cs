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
        if (replyTo is null || !replyTo.StartsWith("$JS.ACK.", StringComparison.Ordinal))
        {
            return false;
        }

        var tokens = replyTo.Split('.');
        int offset;
        string? domain = null;
        string? account = null;
        if (tokens.Length == 9)
        {
            offset = 2;
        }
        else if (tokens.Length >= 11)
        {
            domain = tokens[2] == "_" ? null : tokens[2];
            account = tokens[3];
            offset = 4;
        }
        else
        {
            return false;
        }

        if (!long.TryParse(tokens[offset + 2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var delivered)
            || !ulong.TryParse(tokens[offset + 3], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var streamSeq)
            || !ulong.TryParse(tokens[offset + 4], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var consumerSeq)
            || !long.TryParse(tokens[offset + 5], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var nanos)
            || !ulong.TryParse(tokens[offset + 6], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pending)
            || tokens[offset].Length == 0 || tokens[offset + 1].Length == 0)
        {
            return false;
        }

        metadata = new AckMetadata(domain, account, tokens[offset], tokens[offset + 1], delivered, streamSeq, consumerSeq,
            DateTimeOffset.UnixEpoch.AddTicks(nanos / 100), pending)
        {
            TimestampNanoseconds = nanos,
        };
        return true;
    }

    /// <exception cref="FormatException">Not a JetStream ack subject.</exception>
    public static AckMetadata Parse(string? replyTo)
        => TryParse(replyTo, out var metadata) ? metadata! : throw new FormatException($"'{replyTo}' is not a JetStream ack subject ($JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<tm>.<pending>).");
}
