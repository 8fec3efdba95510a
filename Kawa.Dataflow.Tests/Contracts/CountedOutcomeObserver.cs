namespace Kawa.Dataflow.Tests.Contracts;

/// <summary>What a source that keeps no per-message outcome recorded for a message, read from its own state: its acked
/// and terminated counts and its redelivery schedule (exact on a frozen fake clock). The contract settles one token at a
/// time and asks straight after, so a count that grew belongs to the message asked about; messages are told apart by
/// stream and stream sequence.</summary>
/// <typeparam name="T">The payload type.</typeparam>
internal sealed class CountedOutcomeObserver<T>(Func<long> acked, Func<long> terminated, Func<Message<T>, DateTimeOffset?> redeliveryDue, TimeProvider time)
{
    private readonly Dictionary<(string, ulong), AckOutcome> _known = [];
    private long _acked;
    private long _terminated;

    public AckOutcome? OutcomeSeen(Message<T> message)
    {
        var id = (message.Attributes.GetOrDefault(MessageAttributeKeys.Stream, ""), message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence));
        lock (_known)
        {
            if (_known.TryGetValue(id, out var known))
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
            else if (redeliveryDue(message) is { } due)
            {
                seen = AckOutcome.Negative(due - time.GetUtcNow());
            }

            if (seen is { } outcome)
            {
                _known[id] = outcome;
            }

            return seen;
        }
    }
}
