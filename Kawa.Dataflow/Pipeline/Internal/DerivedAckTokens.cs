namespace Kawa.Dataflow;

/// <summary>
/// The shared state of a fan-out: one parent token settled once all its children are. The parent is acked when every
/// child was acked; otherwise it gets one negative ack with the largest delay any child asked for (a terminated
/// child counts as not acked: the parent is redelivered, since the other outputs may not be durable).
/// A keep-alive on any child reaches the parent (see <see cref="FanOutChildToken"/>).
/// </summary>
internal sealed class FanOutGroup(AckToken parent, int children)
{
    public AckToken Parent => parent;

    private int _remaining = children;
    private int _notAcked;
    private long _maxDelayTicks;

    public void ChildCompleted(AckOutcome outcome)
    {
        if (outcome.Kind != AckKind.Ack)
        {
            Volatile.Write(ref _notAcked, 1);
            var ticks = outcome.Delay.Ticks;
            var seen = Volatile.Read(ref _maxDelayTicks);
            while (ticks > seen)
            {
                var previous = Interlocked.CompareExchange(ref _maxDelayTicks, ticks, seen);
                if (previous == seen)
                {
                    break;
                }

                seen = previous;
            }
        }

        if (Interlocked.Decrement(ref _remaining) == 0)
        {
            parent.Complete(Volatile.Read(ref _notAcked) == 0
                ? AckOutcome.Acked
                : AckOutcome.Negative(TimeSpan.FromTicks(Volatile.Read(ref _maxDelayTicks))));
        }
    }
}

/// <summary>One output's token in a fan-out; its keep-alives go to the parent, so a sink holding one output keeps
/// the source message alive.</summary>
internal sealed class FanOutChildToken(FanOutGroup group) : AckToken
{
    protected override void OnCompleted(AckOutcome outcome) => group.ChildCompleted(outcome);

    protected override void OnInProgress() => group.Parent.InProgress();
}

/// <summary>
/// The token of a dead-letter record: acking it acks the original message; a negative ack or termination of the
/// record negatively acks the original (it was not made durable anywhere, so it must come back). A keep-alive on the
/// record keeps the original alive while the dead-letter destination holds it.
/// </summary>
internal sealed class DeadLetterAckToken(AckToken original, Action onAcked, AckOutcome onWritten) : AckToken
{
    protected override void OnCompleted(AckOutcome outcome)
    {
        if (outcome.Kind == AckKind.Ack)
        {
            original.Complete(onWritten);
            onAcked();
        }
        else
        {
            original.Complete(AckOutcome.Negative(outcome.Kind == AckKind.Nack ? outcome.Delay : TimeSpan.Zero));
        }
    }

    protected override void OnInProgress() => original.InProgress();
}
