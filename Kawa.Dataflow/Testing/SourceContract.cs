namespace Kawa.Dataflow.Testing;

/// <summary>A source prepared for a contract check, with what the check needs to see.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class SourceUnderTest<T>
{
    /// <summary>The source.</summary>
    public required ISource<T> Source { get; init; }

    /// <summary>The outcome the source recorded for a message it delivered (<see langword="null"/> if none yet): how the
    /// check sees that a token's outcome reaches the source.</summary>
    public required Func<Message<T>, AckOutcome?> OutcomeSeen { get; init; }

    /// <summary>Releases the source after the check (optional).</summary>
    public Func<ValueTask>? Cleanup { get; init; }
}

/// <summary>
/// The rules every <see cref="ISource{T}"/> must keep, as checks that throw <see cref="ContractViolationException"/>.
/// Test-framework agnostic: derive, implement <see cref="CreateAsync"/>, and call the checks from your tests.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Decided rules checked here: each delivery has a fresh, pending token; a receive with a cancelled token throws
/// <see cref="OperationCanceledException"/>; a receive waiting on an empty source throws it promptly when its token
/// fires; after <see cref="Delivery{T}.EndOfStream"/> every further receive returns end of stream again (stable end);
/// a token's outcome reaches the source; a token refuses a second final outcome; a negatively acked message is delivered
/// again, with a fresh token.
/// <para>Four rules do not fit every source. A source that cannot keep one declares it with a capability switch
/// (<see cref="OutcomesReachSource"/>, <see cref="CanStayOpen"/>, <see cref="CanEnd"/>, <see cref="RedeliversNegativeAcks"/>), and the check that assumed it is
/// replaced by one that asserts what such a source does instead; calling the replaced check then throws
/// <see cref="InvalidOperationException"/>, so a declaration never turns a check into a silent pass.
/// <see cref="VerifyAllAsync"/> runs the right set.</para>
/// </remarks>
public abstract class SourceContract<T>
{
    /// <summary>The longest a check waits for the source before calling it a violation. Default 10 seconds.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Whether a token's outcome reaches the source (it forgets, redelivers or drops the message accordingly).
    /// Default <see langword="true"/>.</summary>
    /// <remarks>Declare <see langword="false"/> only for an <b>at-most-once</b> source whose tokens are no-ops because
    /// there is nothing to tell (core NATS keeps no message, so a negative ack cannot bring one back). Then
    /// <see cref="OutcomeReachesSourceAsync"/> does not apply and <see cref="OutcomeChangesNothingAsync"/> checks the
    /// at-most-once behaviour instead.</remarks>
    public bool OutcomesReachSource { get; init; } = true;

    /// <summary>Whether the source can stay open with nothing to deliver, so that a receive waits (a channel, a socket,
    /// standard input, a followed file). Default <see langword="true"/>.</summary>
    /// <remarks>Declare <see langword="false"/> for a source that always ends after what it holds (a replay of files):
    /// <see cref="CreateAsync"/> is then always asked to end, <see cref="PendingReceiveHonoursCancellationAsync"/> does not
    /// apply (no receive ever waits for new data), and <see cref="EmptySourceEndsAtOnceAsync"/> checks instead that an
    /// empty source ends.</remarks>
    public bool CanStayOpen { get; init; } = true;

    /// <summary>Whether the source can end (<see cref="Delivery{T}.EndOfStream"/>). Default <see langword="true"/>.</summary>
    /// <remarks>Declare <see langword="false"/> for a source that never ends on its own (a file followed like
    /// <c>tail -F</c>): <see cref="CreateAsync"/> is then never asked to end, <see cref="EndOfStreamIsStableAsync"/> does
    /// not apply, and <see cref="KeepsWaitingAfterLastMessageAsync"/> checks instead that after its last message the
    /// source waits for more rather than ending.</remarks>
    public bool CanEnd { get; init; } = true;

    /// <summary>Whether the source itself delivers a negatively acked message again (after the outcome's delay), as
    /// <see cref="AckKind.Nack"/> promises. Default <see langword="true"/>.</summary>
    /// <remarks>Declare <see langword="false"/> for a source that hands each outcome to its owner to act on (an
    /// <c>onOutcome</c> callback: redelivering is then the owner's job) and for an at-most-once source. Then
    /// <see cref="NegativeAckIsRedeliveredAsync"/> does not apply and <see cref="NegativeAckIsNotRedeliveredAsync"/> checks
    /// instead that the message does not come back. That needs an end to see: for a source declared both not to redeliver
    /// and never to end it throws, and <see cref="VerifyAllAsync"/> has no redelivery check to run.</remarks>
    public bool RedeliversNegativeAcks { get; init; } = true;

    /// <summary>Creates a fresh source holding exactly <paramref name="messageCount"/> messages with distinct payloads.</summary>
    /// <param name="messageCount">How many messages it delivers.</param>
    /// <param name="endAfterMessages">After them: <see langword="true"/> to end the stream; <see langword="false"/> to wait
    /// for more (an open channel, an unterminated stream), so that cancelling a pending receive can be checked. Always
    /// <see langword="true"/> when <see cref="CanStayOpen"/> is <see langword="false"/>, always <see langword="false"/>
    /// when <see cref="CanEnd"/> is <see langword="false"/>.</param>
    protected abstract ValueTask<SourceUnderTest<T>> CreateAsync(int messageCount, bool endAfterMessages);

    // For checks that only read the messages: whether the source then ends or stays open does not matter.
    private ValueTask<SourceUnderTest<T>> CreateEitherAsync(int messageCount) => CreateAsync(messageCount, endAfterMessages: !CanStayOpen || CanEnd);

    private void Require(bool declared, string capability, string instead)
    {
        if (!declared)
        {
            throw new InvalidOperationException($"This contract declares {capability} = false, so this check does not apply; {instead} checks what the source does instead.");
        }
    }

    /// <summary>Each delivery has its own token, pending until someone settles it.</summary>
    public async Task EachDeliveryHasAFreshTokenAsync()
    {
        var under = await CreateEitherAsync(3).ConfigureAwait(false);
        try
        {
            var tokens = new List<AckToken>();
            for (var i = 0; i < 3; i++)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (delivery.IsEndOfStream)
                {
                    throw new ContractViolationException($"Ended after {i} of 3 messages.");
                }

                if (delivery.Ack.IsCompleted)
                {
                    throw new ContractViolationException($"Delivery {i + 1} came with a token that already had an outcome ({delivery.Ack.Outcome}).");
                }

                if (tokens.Exists(t => ReferenceEquals(t, delivery.Ack)))
                {
                    throw new ContractViolationException($"Delivery {i + 1} reused the token of an earlier delivery: each delivery needs a fresh one.");
                }

                tokens.Add(delivery.Ack);
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>A receive called with an already cancelled token throws <see cref="OperationCanceledException"/>.</summary>
    public async Task ReceiveWithCancelledTokenThrowsAsync()
    {
        var under = await CreateAsync(1, endAfterMessages: !CanStayOpen).ConfigureAwait(false);
        try
        {
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync().ConfigureAwait(false);
            try
            {
                var delivery = await ReceiveAsync(under.Source, cancelled.Token).ConfigureAwait(false);
                throw new ContractViolationException($"A receive with a cancelled token returned {(delivery.IsEndOfStream ? "end of stream" : "a message")} instead of throwing OperationCanceledException.");
            }
            catch (OperationCanceledException)
            {
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>A receive waiting on an empty (not ended) source throws <see cref="OperationCanceledException"/> promptly when its token fires.</summary>
    /// <exception cref="InvalidOperationException"><see cref="CanStayOpen"/> is declared <see langword="false"/>.</exception>
    public async Task PendingReceiveHonoursCancellationAsync()
    {
        Require(CanStayOpen, nameof(CanStayOpen), nameof(EmptySourceEndsAtOnceAsync));
        var under = await CreateAsync(0, endAfterMessages: false).ConfigureAwait(false);
        try
        {
            using var cts = new CancellationTokenSource();
            var receive = under.Source.ReceiveAsync(cts.Token).AsTask();
            if (receive.IsCompleted)
            {
                var early = await receive.ConfigureAwait(false);
                throw new ContractViolationException($"An empty, open source returned {(early.IsEndOfStream ? "end of stream" : "a message")} instead of waiting.");
            }

            await cts.CancelAsync().ConfigureAwait(false);
            try
            {
                await receive.WaitAsync(MaxWait).ConfigureAwait(false);
                throw new ContractViolationException("A pending receive returned normally after its token fired; it must throw OperationCanceledException.");
            }
            catch (OperationCanceledException)
            {
            }
            catch (TimeoutException)
            {
                throw new ContractViolationException($"A pending receive did not react to its token within {MaxWait}.");
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>After end of stream, further receives return end of stream again.</summary>
    /// <exception cref="InvalidOperationException"><see cref="CanEnd"/> is declared <see langword="false"/>.</exception>
    public async Task EndOfStreamIsStableAsync()
    {
        Require(CanEnd, nameof(CanEnd), nameof(KeepsWaitingAfterLastMessageAsync));
        var under = await CreateAsync(2, endAfterMessages: true).ConfigureAwait(false);
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (delivery.IsEndOfStream)
                {
                    throw new ContractViolationException($"Ended after {i} of 2 messages.");
                }

                delivery.Ack.Ack();
            }

            for (var i = 0; i < 3; i++)
            {
                var after = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (!after.IsEndOfStream)
                {
                    throw new ContractViolationException($"Receive {i + 1} after the last message returned a message instead of end of stream.");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>Each kind of outcome given to a token reaches the source, and a second final outcome is refused.</summary>
    /// <exception cref="InvalidOperationException"><see cref="OutcomesReachSource"/> is declared <see langword="false"/>.</exception>
    public async Task OutcomeReachesSourceAsync()
    {
        Require(OutcomesReachSource, nameof(OutcomesReachSource), nameof(OutcomeChangesNothingAsync));
        var under = await CreateEitherAsync(3).ConfigureAwait(false);
        try
        {
            AckOutcome[] outcomes = [AckOutcome.Acked, AckOutcome.Negative(TimeSpan.FromSeconds(2)), AckOutcome.Terminated];
            foreach (var outcome in outcomes)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (delivery.IsEndOfStream)
                {
                    throw new ContractViolationException("Ended before 3 messages.");
                }

                delivery.Ack.Complete(outcome);
                var seen = under.OutcomeSeen(delivery.Message);
                if (seen != outcome)
                {
                    throw new ContractViolationException($"The source saw {seen?.ToString() ?? "no outcome"} for a message given {outcome}.");
                }

                if (delivery.Ack.TryComplete(AckOutcome.Negative()))
                {
                    throw new ContractViolationException("A token accepted a second final outcome.");
                }

                if (under.OutcomeSeen(delivery.Message) != outcome)
                {
                    throw new ContractViolationException("A second final outcome reached the source.");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>For a source declared <see cref="CanStayOpen"/> = <see langword="false"/>: an empty source ends (after at
    /// most some <see cref="Delivery{T}.Idle"/> answers) instead of waiting, and keeps ending.</summary>
    /// <exception cref="InvalidOperationException"><see cref="CanStayOpen"/> is <see langword="true"/>: check
    /// <see cref="PendingReceiveHonoursCancellationAsync"/> instead.</exception>
    public async Task EmptySourceEndsAtOnceAsync()
    {
        if (CanStayOpen)
        {
            throw new InvalidOperationException($"This contract declares {nameof(CanStayOpen)} = true: {nameof(PendingReceiveHonoursCancellationAsync)} is the check.");
        }

        var under = await CreateAsync(0, endAfterMessages: true).ConfigureAwait(false);
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (!delivery.IsEndOfStream)
                {
                    throw new ContractViolationException($"A source declared unable to stay open returned a message from an empty source (receive {i + 1}) instead of ending.");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>For a source declared <see cref="CanEnd"/> = <see langword="false"/>: once its messages are received and
    /// acked, a further receive waits instead of returning end of stream, and throws <see cref="OperationCanceledException"/>
    /// when its token fires.</summary>
    /// <exception cref="InvalidOperationException"><see cref="CanEnd"/> is <see langword="true"/>: check
    /// <see cref="EndOfStreamIsStableAsync"/> instead.</exception>
    public async Task KeepsWaitingAfterLastMessageAsync()
    {
        if (CanEnd)
        {
            throw new InvalidOperationException($"This contract declares {nameof(CanEnd)} = true: {nameof(EndOfStreamIsStableAsync)} is the check.");
        }

        var under = await CreateAsync(2, endAfterMessages: false).ConfigureAwait(false);
        try
        {
            for (var i = 0; i < 2; i++)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                delivery.Ack.Ack();
            }

            using var cts = new CancellationTokenSource();
            var receive = under.Source.ReceiveAsync(cts.Token).AsTask();
            await cts.CancelAsync().ConfigureAwait(false);
            try
            {
                var after = await receive.WaitAsync(MaxWait).ConfigureAwait(false);
                if (after.IsEndOfStream)
                {
                    throw new ContractViolationException("A source declared never to end returned end of stream after its last message.");
                }

                if (!after.IsIdle)
                {
                    throw new ContractViolationException("A receive after the last message returned a message although nothing was added.");
                }
            }
            catch (OperationCanceledException)
            {
            }
            catch (TimeoutException)
            {
                throw new ContractViolationException($"A receive waiting after the last message did not react to its token within {MaxWait}.");
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>For a source declared <see cref="OutcomesReachSource"/> = <see langword="false"/> (at-most-once): every
    /// kind of outcome is accepted once and refused a second time, the source records none, and a negatively acked message
    /// is not delivered again (when the source can end, the next receive is end of stream).</summary>
    /// <exception cref="InvalidOperationException"><see cref="OutcomesReachSource"/> is <see langword="true"/>: check
    /// <see cref="OutcomeReachesSourceAsync"/> instead.</exception>
    public async Task OutcomeChangesNothingAsync()
    {
        if (OutcomesReachSource)
        {
            throw new InvalidOperationException($"This contract declares {nameof(OutcomesReachSource)} = true: {nameof(OutcomeReachesSourceAsync)} is the check.");
        }

        var under = await CreateEitherAsync(3).ConfigureAwait(false);
        try
        {
            AckOutcome[] outcomes = [AckOutcome.Acked, AckOutcome.Negative(), AckOutcome.Terminated];
            foreach (var outcome in outcomes)
            {
                var delivery = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (delivery.IsEndOfStream)
                {
                    throw new ContractViolationException("Ended before 3 messages.");
                }

                delivery.Ack.Complete(outcome);
                if (under.OutcomeSeen(delivery.Message) is { } seen)
                {
                    throw new ContractViolationException($"A source declared at-most-once recorded {seen} for a message given {outcome}.");
                }

                if (delivery.Ack.TryComplete(AckOutcome.Negative()))
                {
                    throw new ContractViolationException("A token accepted a second final outcome.");
                }
            }

            if (CanEnd)
            {
                var after = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (!after.IsEndOfStream)
                {
                    throw new ContractViolationException("A source declared at-most-once delivered a message again after a negative ack (or more than it held).");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>A negatively acked message (delay zero) is delivered again, with a fresh token, before the source ends; once
    /// that delivery is acked the source ends (when it can).</summary>
    /// <exception cref="InvalidOperationException"><see cref="RedeliversNegativeAcks"/> is declared <see langword="false"/>.</exception>
    public async Task NegativeAckIsRedeliveredAsync()
    {
        Require(RedeliversNegativeAcks, nameof(RedeliversNegativeAcks), nameof(NegativeAckIsNotRedeliveredAsync));
        var under = await CreateEitherAsync(1).ConfigureAwait(false);
        try
        {
            var first = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
            if (first.IsEndOfStream)
            {
                throw new ContractViolationException("Ended before its one message.");
            }

            first.Ack.Nack();
            var again = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
            if (again.IsEndOfStream)
            {
                throw new ContractViolationException("The source ended without delivering its negatively acked message again.");
            }

            if (ReferenceEquals(again.Ack, first.Ack) || again.Ack.IsCompleted)
            {
                throw new ContractViolationException("A redelivery must come with a fresh, pending token.");
            }

            again.Ack.Ack();
            if (CanEnd)
            {
                var end = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
                if (!end.IsEndOfStream)
                {
                    throw new ContractViolationException("The source delivered its message yet again after the redelivery was acked (or held more than one message).");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>For a source declared <see cref="RedeliversNegativeAcks"/> = <see langword="false"/>: a negatively acked
    /// message does not come back; the source ends after it. Needs <see cref="CanEnd"/> to see that.</summary>
    /// <exception cref="InvalidOperationException"><see cref="RedeliversNegativeAcks"/> is <see langword="true"/> (check
    /// <see cref="NegativeAckIsRedeliveredAsync"/> instead), or <see cref="CanEnd"/> is <see langword="false"/>.</exception>
    public async Task NegativeAckIsNotRedeliveredAsync()
    {
        if (RedeliversNegativeAcks || !CanEnd)
        {
            throw new InvalidOperationException(RedeliversNegativeAcks
                ? $"This contract declares {nameof(RedeliversNegativeAcks)} = true: {nameof(NegativeAckIsRedeliveredAsync)} is the check."
                : $"This contract declares {nameof(CanEnd)} = false: that a message does not come back cannot be seen without an end.");
        }

        var under = await CreateAsync(1, endAfterMessages: true).ConfigureAwait(false);
        try
        {
            var first = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
            if (first.IsEndOfStream)
            {
                throw new ContractViolationException("Ended before its one message.");
            }

            first.Ack.Nack();
            var after = await ReceiveAsync(under.Source, CancellationToken.None).ConfigureAwait(false);
            if (!after.IsEndOfStream)
            {
                throw new ContractViolationException("A source declared not to redeliver delivered a message again after a negative ack.");
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>Runs every check that applies, given the declared capabilities.</summary>
    public async Task VerifyAllAsync()
    {
        await EachDeliveryHasAFreshTokenAsync().ConfigureAwait(false);
        await ReceiveWithCancelledTokenThrowsAsync().ConfigureAwait(false);
        await (CanStayOpen ? PendingReceiveHonoursCancellationAsync() : EmptySourceEndsAtOnceAsync()).ConfigureAwait(false);
        await (CanEnd ? EndOfStreamIsStableAsync() : KeepsWaitingAfterLastMessageAsync()).ConfigureAwait(false);
        await (OutcomesReachSource ? OutcomeReachesSourceAsync() : OutcomeChangesNothingAsync()).ConfigureAwait(false);
        if (RedeliversNegativeAcks || CanEnd)
        {
            await (RedeliversNegativeAcks ? NegativeAckIsRedeliveredAsync() : NegativeAckIsNotRedeliveredAsync()).ConfigureAwait(false);
        }
    }

    private async Task<Delivery<T>> ReceiveAsync(ISource<T> source, CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var delivery = await source.ReceiveAsync(cancellationToken).AsTask().WaitAsync(MaxWait, CancellationToken.None).ConfigureAwait(false);
                if (!delivery.IsIdle)
                {
                    return delivery;
                }

                // Idle is a valid answer (nothing ready, outcomes awaited); these checks are about messages, so ask again.
            }
        }
        catch (TimeoutException)
        {
            throw new ContractViolationException($"A receive that should have returned did not within {MaxWait}.");
        }
    }

    private static async ValueTask CleanupAsync(SourceUnderTest<T> under)
    {
        if (under.Cleanup is not null)
        {
            await under.Cleanup().ConfigureAwait(false);
        }
    }
}
