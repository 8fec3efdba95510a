namespace Kawa.Dataflow;

/// <summary>
/// Parts that share one ack token (the messages of one send, which may land in different batches; the copies a fan-out
/// or router sends to several destinations): the token is settled once every part is, with the worst outcome among
/// them (terminate over nack over ack; the longest nack delay).
/// </summary>
internal sealed class AckGroup
{
    private readonly AckToken _token;
    private readonly Action<AckGroup>? _onSettled;
    private readonly Lock _lock = new();
    private int _remaining;
    private AckOutcome _worst = AckOutcome.Acked;
    private volatile bool _abandoned;

    public AckGroup(AckToken token, int count, Action<AckGroup>? onSettled)
    {
        _token = token;
        _remaining = count;
        _onSettled = onSettled;
    }

    public AckToken Token => _token;

    /// <summary>One message of the group has its outcome.</summary>
    public void MessageSettled(AckOutcome outcome) => MessagesSettled(1, outcome);

    /// <summary><paramref name="count"/> messages of the group have <paramref name="outcome"/>.</summary>
    public void MessagesSettled(int count, AckOutcome outcome)
    {
        AckOutcome final;
        lock (_lock)
        {
            _worst = Worse(_worst, outcome);
            _remaining -= count;
            if (_remaining > 0)
            {
                return;
            }

            final = _worst;
        }

        Finish(final);
    }

    /// <summary>Negatively acks the whole group now, whatever its messages' state (drain timeout, disposal).</summary>
    public bool ForceNack(TimeSpan delay = default) => Finish(AckOutcome.Negative(delay));

    /// <summary>Lets go of the token without settling it: its owner threw, so the caller settles it (the destination contract).</summary>
    public void Abandon() => _abandoned = true;

    private bool Finish(AckOutcome outcome)
    {
        if (_abandoned)
        {
            _onSettled?.Invoke(this);
            return false;
        }

        try
        {
            return _token.TryComplete(outcome);
        }
        catch (Exception)
        {
            // A source callback that throws breaks the token's rule (should not throw), but the token has its outcome
            // regardless; letting it escape would stop the sink from settling everything else.
            return true;
        }
        finally
        {
            _onSettled?.Invoke(this);
        }
    }

    // Terminate beats Nack beats Ack; between two nacks the longer delay wins.
    internal static AckOutcome Worse(AckOutcome a, AckOutcome b)
    {
        if (a.Kind != b.Kind)
        {
            return a.Kind > b.Kind ? a : b;
        }

        return a.Delay >= b.Delay ? a : b;
    }
}

/// <summary>Who settles one batch's messages, exactly once: the sink, a <see cref="DeferredAcks"/> handle, or the dead-letter path.</summary>
internal sealed class BatchSettlement
{
    private readonly AckGroup[] _groups;
    private readonly Action<BatchSettlement>? _onClaimed;
    private int _claimed;

    public BatchSettlement(AckGroup[] groups, Action<BatchSettlement>? onClaimed = null)
    {
        _groups = groups;
        _onClaimed = onClaimed;
    }

    public int Count => _groups.Length;

    public bool IsSettled => Volatile.Read(ref _claimed) != 0;

    /// <summary>Claims the batch so that nobody else settles it; the claimant then settles each message with <see cref="SettleMessage"/>.</summary>
    public bool TryClaim()
    {
        if (Interlocked.Exchange(ref _claimed, 1) != 0)
        {
            return false;
        }

        _onClaimed?.Invoke(this);
        return true;
    }

    public bool TrySettle(AckOutcome outcome)
    {
        if (!TryClaim())
        {
            return false;
        }

        // Group consecutive messages of the same send so a big send settles its token in one step.
        var i = 0;
        while (i < _groups.Length)
        {
            var group = _groups[i];
            var run = 1;
            while (i + run < _groups.Length && ReferenceEquals(_groups[i + run], group))
            {
                run++;
            }

            group.MessagesSettled(run, outcome);
            i += run;
        }

        return true;
    }

    public void SettleMessage(int index, AckOutcome outcome) => _groups[index].MessageSettled(outcome);

    public void InProgress()
    {
        if (IsSettled)
        {
            return;
        }

        AckGroup? previous = null;
        foreach (var group in _groups)
        {
            if (!ReferenceEquals(group, previous))
            {
                group.Token.InProgress();
                previous = group;
            }
        }
    }
}
