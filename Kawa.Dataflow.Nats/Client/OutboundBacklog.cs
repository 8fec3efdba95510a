using System.Buffers;
using System.Buffers.Text;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>
/// Replays the outbound backlog after a reconnect without its PING/PONG: those belonged to the lost connection
/// (their waiters already failed) and would otherwise answer the new connection's flushes early.
/// </summary>
/// <remarks>The backlog holds only operations this client wrote, each complete, so a scan by operation (skipping
/// PUB/HPUB payloads by their declared size) is exact.</remarks>
internal static class OutboundBacklog
{
    public static async ValueTask WriteWithoutPingsAsync(ReadOnlySequence<byte> buffer, Stream stream, CancellationToken cancellationToken)
    {
        foreach (var range in KeptRanges(buffer))
        {
            foreach (var segment in buffer.Slice(range.Start, range.End))
            {
                await stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The slices of <paramref name="buffer"/> to keep, in order.</summary>
    public static List<(SequencePosition Start, SequencePosition End)> KeptRanges(ReadOnlySequence<byte> buffer)
    {
        var kept = new List<(SequencePosition, SequencePosition)>();
        var reader = new SequenceReader<byte>(buffer);
        SequencePosition? runStart = null;
        while (!reader.End)
        {
            var opStart = reader.Position;
            if (!reader.TryReadTo(out ReadOnlySequence<byte> line, "\r\n"u8, advancePastDelimiter: true))
            {
                // Cannot happen (writers commit whole operations); keep the rest verbatim.
                runStart ??= opStart;
                reader.AdvanceToEnd();
                break;
            }

            var text = line.IsSingleSegment ? line.FirstSpan : line.ToArray();
            var isPing = text.SequenceEqual("PING"u8) || text.SequenceEqual("PONG"u8);
            if (text.StartsWith("PUB "u8) || text.StartsWith("HPUB "u8))
            {
                var lastSpace = text.LastIndexOf((byte)' ');
                if (!Utf8Parser.TryParse(text[(lastSpace + 1)..], out long size, out _))
                {
                    size = 0;
                }

                reader.Advance(Math.Min(size + 2, reader.Remaining));
            }

            if (isPing)
            {
                if (runStart is { } start)
                {
                    kept.Add((start, opStart));
                    runStart = null;
                }
            }
            else
            {
                runStart ??= opStart;
            }
        }

        if (runStart is { } last)
        {
            kept.Add((last, reader.Position));
        }

        return kept;
    }
}
