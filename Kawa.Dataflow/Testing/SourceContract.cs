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
/// a token's outcome reaches the source; a token refuses a second final outcome.
/// </remarks>
public abstract class SourceContract<T>
{
    /// <summary>The longest a check waits for the source before calling it a violation. Default 10 seconds.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Creates a fresh source holding exactly <paramref name="messageCount"/> messages with distinct payloads.</summary>
    /// <param name="messageCount">How many messages it delivers.</param>
    /// <param name="endAfterMessages">After them: <see langword="true"/> to end the stream; <see langword="false"/> to wait
    /// for more (an open channel, an unterminated stream), so that cancelling a pending receive can be checked.</param>
    protected abstract ValueTask<SourceUnderTest<T>> CreateAsync(int messageCount, bool endAfterMessages);

    /// <summary>Each delivery has its own token, pending until someone settles it.</summary>
    public async Task EachDeliveryHasAFreshTokenAsync()
    {
        var under = await CreateAsync(3, endAfterMessages: true).ConfigureAwait(false);
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
        var under = await CreateAsync(1, endAfterMessages: false).ConfigureAwait(false);
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
    public async Task PendingReceiveHonoursCancellationAsync()
    {
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
    public async Task EndOfStreamIsStableAsync()
    {
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
    public async Task OutcomeReachesSourceAsync()
    {
        var under = await CreateAsync(3, endAfterMessages: true).ConfigureAwait(false);
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

    /// <summary>Runs every check.</summary>
    public async Task VerifyAllAsync()
    {
        await EachDeliveryHasAFreshTokenAsync().ConfigureAwait(false);
        await ReceiveWithCancelledTokenThrowsAsync().ConfigureAwait(false);
        await PendingReceiveHonoursCancellationAsync().ConfigureAwait(false);
        await EndOfStreamIsStableAsync().ConfigureAwait(false);
        await OutcomeReachesSourceAsync().ConfigureAwait(false);
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
