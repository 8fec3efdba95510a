using System.Runtime.CompilerServices;

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

    /// <summary>A keep-alive from any part: forwarded to the shared token (ignored once it is settled).</summary>
    public void InProgress() => _token.InProgress();

    /// <summary>One message of the group has its outcome.</summary>
    public void MessageSettled(AckOutcome outcome) => MessagesSettled(1, outcome);

    /// <summary><paramref name="count"/> messages of the group have <paramref name="outcome"/>.</summary>
    /// <returns><see langword="true"/> if this settled the group's token.</returns>
    public bool MessagesSettled(int count, AckOutcome outcome)
    {
        AckOutcome final;
        lock (_lock)
        {
            _worst = Worse(_worst, outcome);
            _remaining -= count;
            if (_remaining > 0)
            {
                return false;
            }

            final = _worst;
        }

        return Finish(final);
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
/// <remarks>Each message's owner is its own <see cref="AckToken"/> (a send of one message: no group needed) or the
/// <see cref="AckGroup"/> of the send it came with.</remarks>
internal sealed class BatchSettlement
{
    // The batch's owners in order, in chunks (see OpenBatch): every chunk is full.
    private readonly object[][] _owners;
    private readonly int _count;
    private readonly Action<BatchSettlement>? _onSettled;
    private int _claimed;
    private int _unsettled;

    public BatchSettlement(object[][] owners, int count, Action<BatchSettlement>? onSettled = null)
    {
        _owners = owners;
        _count = count;
        _unsettled = count;
        _onSettled = onSettled;
    }

    public int Count => _count;

    public bool IsSettled => Volatile.Read(ref _claimed) != 0;

    /// <summary>Claims the batch so that nobody else settles it; the claimant then settles each message with <see cref="SettleMessage"/>.</summary>
    public bool TryClaim() => Interlocked.Exchange(ref _claimed, 1) == 0;

    public bool TrySettle(AckOutcome outcome)
    {
        if (!TryClaim())
        {
            return false;
        }

        SettleAll(outcome);
        _onSettled?.Invoke(this);
        return true;
    }

    public void SettleMessage(int index, AckOutcome outcome)
    {
        if (OwnerAt(index) is AckGroup group)
        {
            group.MessageSettled(outcome);
        }
        else
        {
            TryComplete((AckToken)OwnerAt(index), outcome);
        }

        // The claimant (the dead-letter path) settles each message once: after the last, nobody needs to track the batch.
        if (Interlocked.Decrement(ref _unsettled) == 0)
        {
            _onSettled?.Invoke(this);
        }
    }

    /// <summary>
    /// Negatively acks every token of this batch not yet settled, even if someone claimed the batch (a dead-letter write
    /// still in progress when the sink stops); returns how many tokens this settled.
    /// </summary>
    public int ForceNack()
    {
        var settled = 0;
        if (TryClaim())
        {
            settled = SettleAll(AckOutcome.Negative());
        }
        else
        {
            object? previous = null;
            foreach (var chunk in _owners)
            {
                foreach (var owner in chunk)
                {
                    if (!ReferenceEquals(owner, previous)
                        && (owner is AckGroup group ? group.ForceNack() : TryComplete((AckToken)owner, AckOutcome.Negative())))
                    {
                        settled++;
                    }

                    previous = owner;
                }
            }
        }

        _onSettled?.Invoke(this);
        return settled;
    }

    /// <summary>A keep-alive for one message (its dead-letter record is held somewhere): forwarded to its owner's token.</summary>
    public void MessageInProgress(int index)
    {
        var owner = OwnerAt(index);
        (owner is AckGroup group ? group.Token : (AckToken)owner).InProgress();
    }

    private object OwnerAt(int index)
    {
        var chunk = 0;
        while (index >= _owners[chunk].Length)
        {
            index -= _owners[chunk].Length;
            chunk++;
        }

        return _owners[chunk][index];
    }

    public void InProgress()
    {
        if (IsSettled)
        {
            return;
        }

        object? previous = null;
        foreach (var chunk in _owners)
        {
            foreach (var owner in chunk)
            {
                if (!ReferenceEquals(owner, previous))
                {
                    (owner is AckGroup group ? group.Token : (AckToken)owner).InProgress();
                    previous = owner;
                }
            }
        }
    }

    // Returns how many tokens got their final outcome from this call.
    private int SettleAll(AckOutcome outcome)
    {
        var settled = 0;
        var tally = default(ObserverTally);
        try
        {
            foreach (var owners in _owners)
            {
                // A first pass of plain reads: the settle below is an interlocked operation per token, and those
                // serialize memory accesses, so each token's cache line (last written by the worker that read it from
                // the source, often on the other core) would be fetched one at a time there. Here the fetches overlap.
                var groups = 0;
                foreach (var owner in owners)
                {
                    if (owner is AckGroup)
                    {
                        groups++;
                    }
                    else
                    {
                        _ = Unsafe.As<AckToken>(owner).IsCompleted; // a volatile read: the line the settle writes
                    }
                }

                if (groups == 0)
                {
                    foreach (var owner in owners)
                    {
                        if (TryComplete(Unsafe.As<AckToken>(owner), outcome, ref tally))
                        {
                            settled++;
                        }
                    }

                    continue;
                }

                var i = 0;
                while (i < owners.Length)
                {
                    var owner = owners[i];
                    if (owner is AckGroup group)
                    {
                        // A send's messages are consecutive within a batch: settle them in one step (per chunk).
                        var run = 1;
                        while (i + run < owners.Length && ReferenceEquals(owners[i + run], group))
                        {
                            run++;
                        }

                        if (group.MessagesSettled(run, outcome))
                        {
                            settled++;
                        }

                        i += run;
                    }
                    else
                    {
                        if (TryComplete(Unsafe.As<AckToken>(owner), outcome, ref tally))
                        {
                            settled++;
                        }

                        i++;
                    }
                }
            }
        }
        finally
        {
            tally.Flush();
        }

        return settled;
    }

    private static bool TryComplete(AckToken token, AckOutcome outcome)
    {
        try
        {
            return token.TryComplete(outcome);
        }
        catch (Exception)
        {
            // As below: the token has its outcome regardless.
            return true;
        }
    }

    private static bool TryComplete(AckToken token, AckOutcome outcome, ref ObserverTally tally)
    {
        try
        {
            return token.TryComplete(outcome, ref tally);
        }
        catch (Exception)
        {
            // A source callback that throws breaks the token's rule (should not throw), but the token has its outcome
            // regardless; letting it escape would stop the sink from settling everything else.
            return true;
        }
    }
}
