namespace Kawa.Dataflow;

/// <summary>
/// The receipt for one message read from a source: the only way to tell the source what became of it.
/// </summary>
/// <remarks>
/// <para>
/// Rules every implementation and every caller follow:
/// </para>
/// <list type="bullet">
/// <item>Exactly one <em>final</em> outcome per token: <see cref="Ack"/>, <see cref="Nack"/> or
/// <see cref="Terminate"/>. A second final outcome is a bug in the caller and throws
/// <see cref="InvalidOperationException"/>; the source sees only the first.</item>
/// <item><see cref="InProgress"/> is not final: it asks the source to keep the message alive (for example a
/// JetStream <c>+WPI</c>) and may be called any number of times before the final outcome. After the final
/// outcome it is ignored. Tokens the pipeline derives from a source's token forward it to that token: a fan-out
/// output's child token, a dead-letter record's token, the copies a fan-out or router destination sends on, and a
/// dead letter of the batching sink. The pipeline also calls it itself, once before each retry back-off of a handler
/// (<see cref="ErrorPolicy.Retry(int, TimeSpan?, TimeSpan?)"/>) and of a batching sink's flush.</item>
/// <item>Only a destination calls <see cref="Ack"/>, and only after the message's outputs are durable.
/// Handlers never see tokens. The pipeline itself completes tokens in exactly these cases: a handler emitted
/// nothing (ack), an error policy decided (ack, nack, terminate), or a drain could not finish (nack).</item>
/// <item>The outcome methods are synchronous and must not block: a source that needs I/O to settle an outcome
/// queues it and reports a failure of that I/O from its next receive.</item>
/// </list>
/// <para>
/// Sources derive from this class (or use <see cref="Create(Action{AckOutcome}, Action?)"/>) and override
/// <see cref="OnCompleted(AckOutcome)"/>. The base class enforces the single-outcome rule, so an implementation
/// never has to.
/// </para>
/// </remarks>
public abstract class AckToken
{
    private const int Pending = 0;
    private const int Completing = 1;
    private const int Completed = 2;

    private int _state;
    private AckOutcome _outcome;

    // Set by the pipeline when it takes the message in, so it can release in-flight budget
    // on the final outcome without wrapping (and allocating) a second token per message.
    private IAckObserver? _observer;
    private long _observedBytes;

    /// <summary>Whether the final outcome has been given.</summary>
    public bool IsCompleted => Volatile.Read(ref _state) != Pending;

    /// <summary>The final outcome, or <see langword="null"/> while the message is still in flight.</summary>
    public AckOutcome? Outcome => Volatile.Read(ref _state) == Completed ? _outcome : null;

    /// <summary>The message's outputs are durable: the source may forget it.</summary>
    /// <exception cref="InvalidOperationException">The token already has a final outcome.</exception>
    public void Ack() => Complete(AckOutcome.Acked);

    /// <summary>The message was not processed: the source should redeliver it after <paramref name="delay"/>.</summary>
    /// <param name="delay">How long the source should wait before redelivering; <see cref="TimeSpan.Zero"/> for at once.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative.</exception>
    /// <exception cref="InvalidOperationException">The token already has a final outcome.</exception>
    public void Nack(TimeSpan delay = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        Complete(AckOutcome.Negative(delay));
    }

    /// <summary>The message must never be redelivered (poison): the source drops it for good.</summary>
    /// <exception cref="InvalidOperationException">The token already has a final outcome.</exception>
    public void Terminate() => Complete(AckOutcome.Terminated);

    /// <summary>
    /// Asks the source to keep the message alive a while longer. Not final; ignored after the final outcome.
    /// </summary>
    public void InProgress()
    {
        if (!IsCompleted)
        {
            OnInProgress();
        }
    }

    /// <summary>
    /// Gives the final outcome <paramref name="outcome"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The token already has a final outcome.</exception>
    public void Complete(AckOutcome outcome)
    {
        if (!TryComplete(outcome))
        {
            throw SecondOutcome(outcome);
        }
    }

    /// <summary>
    /// <see cref="Complete(AckOutcome)"/> with the pipeline's accounting added to <paramref name="tally"/> instead of
    /// reported at once (see <see cref="TryComplete(AckOutcome, ref ObserverTally)"/>).
    /// </summary>
    internal void Complete(AckOutcome outcome, ref ObserverTally tally)
    {
        if (!TryComplete(outcome, ref tally))
        {
            throw SecondOutcome(outcome);
        }
    }

    private InvalidOperationException SecondOutcome(AckOutcome outcome) => new(
        $"A message was given a second final outcome ({outcome.Kind}) after {Outcome?.Kind.ToString() ?? "another"}. " +
        "Each message gets exactly one: this is a bug in the component that settled it twice.");

    /// <summary>
    /// Gives the final outcome <paramref name="outcome"/> unless the token already has one.
    /// </summary>
    /// <returns><see langword="true"/> if this call gave the outcome.</returns>
    /// <remarks>For the rare owner that may legitimately race another (for example a drain timer against a late flush).</remarks>
    public bool TryComplete(AckOutcome outcome)
    {
        if (Interlocked.CompareExchange(ref _state, Completing, Pending) != Pending)
        {
            return false;
        }

        _outcome = outcome;
        Volatile.Write(ref _state, Completed);
        try
        {
            OnCompleted(outcome);
        }
        finally
        {
            _observer?.OnCompleted(outcome.Kind, 1, _observedBytes);
        }

        return true;
    }

    /// <summary>
    /// <see cref="TryComplete(AckOutcome)"/> for a sink settling many tokens at once: the pipeline's accounting is added
    /// to <paramref name="tally"/>, which reports it once for the lot (<see cref="ObserverTally.Flush"/>).
    /// </summary>
    internal bool TryComplete(AckOutcome outcome, ref ObserverTally tally)
    {
        if (Interlocked.CompareExchange(ref _state, Completing, Pending) != Pending)
        {
            return false;
        }

        _outcome = outcome;
        Volatile.Write(ref _state, Completed);
        try
        {
            OnCompleted(outcome);
        }
        finally
        {
            if (_observer is { } observer)
            {
                tally.Add(observer, outcome.Kind, _observedBytes);
            }
        }

        return true;
    }

    /// <summary>Called once, with the final outcome. Must not block and should not throw.</summary>
    /// <param name="outcome">The final outcome.</param>
    protected abstract void OnCompleted(AckOutcome outcome);

    /// <summary>Called for each keep-alive request before the final outcome. The default does nothing.</summary>
    protected virtual void OnInProgress()
    {
    }

    /// <summary>Creates a token from delegates: the adapter for sources that do not need a class of their own.</summary>
    /// <param name="onCompleted">Called once with the final outcome.</param>
    /// <param name="onInProgress">Called for each keep-alive request, if given.</param>
    public static AckToken Create(Action<AckOutcome> onCompleted, Action? onInProgress = null)
    {
        ArgumentNullException.ThrowIfNull(onCompleted);
        return new DelegateAckToken(onCompleted, onInProgress);
    }

    /// <summary>A token whose outcome nobody needs (at-most-once sources, tests).</summary>
    public static AckToken None() => new DelegateAckToken(static _ => { }, null);

    internal const string AlreadyObservedMessage = "This ack token is already in flight in a pipeline; a source must return a fresh token for each delivery.";

    /// <summary>
    /// Attaches the pipeline's in-flight accounting: one observer per token, set once at intake. <see langword="false"/>
    /// if the token already has one (a source that returned the same token twice).
    /// </summary>
    internal bool TryObserve(IAckObserver observer, long bytes)
    {
        if (_observer is not null)
        {
            return false;
        }

        _observedBytes = bytes;
        _observer = observer;
        return true;
    }

    private sealed class DelegateAckToken(Action<AckOutcome> onCompleted, Action? onInProgress) : AckToken
    {
        protected override void OnCompleted(AckOutcome outcome) => onCompleted(outcome);

        protected override void OnInProgress() => onInProgress?.Invoke();
    }
}

/// <summary>Told when tokens get their final outcome (the pipeline's in-flight accounting).</summary>
internal interface IAckObserver
{
    /// <summary><paramref name="count"/> tokens carrying <paramref name="bytes"/> payload bytes in all got outcome <paramref name="kind"/>.</summary>
    void OnCompleted(AckKind kind, int count, long bytes);
}

/// <summary>
/// Observer accounting gathered while a sink settles many tokens, reported once per observer and outcome rather than
/// once per token (each report is a few interlocked operations on counters every acking thread shares).
/// </summary>
internal struct ObserverTally
{
    private IAckObserver? _observer;
    private AckKind _kind;
    private int _count;
    private long _bytes;

    public void Add(IAckObserver observer, AckKind kind, long bytes)
    {
        if (!ReferenceEquals(observer, _observer) || kind != _kind)
        {
            Flush();
            _observer = observer;
            _kind = kind;
        }

        _count++;
        _bytes += bytes;
    }

    /// <summary>Reports what was gathered; call it in a <c>finally</c>, so that nothing settled goes unreported.</summary>
    public void Flush()
    {
        if (_count > 0)
        {
            var (count, bytes) = (_count, _bytes);
            _count = 0;
            _bytes = 0;
            _observer!.OnCompleted(_kind, count, bytes);
        }
    }
}
