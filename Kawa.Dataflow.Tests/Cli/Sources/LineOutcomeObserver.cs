using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Sources;

/// <summary>What a line source recorded for each line it delivered, read from its own state: its acked and terminated
/// counts and its redelivery schedule (exact on a frozen <see cref="FakeTimeProvider"/>). The contract settles one token at
/// a time and asks straight after, so a count that grew belongs to the line asked about.</summary>
internal sealed class LineOutcomeObserver(Func<long> acked, Func<long> terminated, Func<IReadOnlyList<(long LineNumber, DateTimeOffset Due)>> scheduled, FakeTimeProvider time)
{
    private readonly Dictionary<long, AckOutcome> _known = [];
    private long _acked;
    private long _terminated;

    public AckOutcome? OutcomeSeen(Message<EventRecord> message)
    {
        var line = (long)message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence);
        lock (_known)
        {
            if (_known.TryGetValue(line, out var known))
            {
                return known;
            }

            AckOutcome? seen = null;
            if (acked() > _acked)
            {
                _acked++;
                seen = AckOutcome.Acked;
            }
            else if (terminated() > _terminated)
            {
                _terminated++;
                seen = AckOutcome.Terminated;
            }
            else if (scheduled().Where(r => r.LineNumber == line).Select(r => (DateTimeOffset?)r.Due).FirstOrDefault() is { } due)
            {
                seen = AckOutcome.Negative(due - time.GetUtcNow());
            }

            if (seen is { } outcome)
            {
                _known[line] = outcome;
            }

            return seen;
        }
    }
}
