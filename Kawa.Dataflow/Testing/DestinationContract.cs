namespace Kawa.Dataflow.Testing;

/// <summary>A destination prepared for a contract check, with what the check needs to see.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class DestinationUnderTest<T>
{
    /// <summary>The destination.</summary>
    public required IDestination<T> Destination { get; init; }

    /// <summary>Whether a message is durable right now (present where the destination writes).</summary>
    public required Func<Message<T>, bool> IsDurable { get; init; }

    /// <summary>Makes every later write fail (a closed channel, a broken stream, a failing flush).</summary>
    public required Action BreakWrites { get; init; }

    /// <summary>Releases the destination after the check (optional).</summary>
    public Func<ValueTask>? Cleanup { get; init; }
}

/// <summary>
/// The rules every <see cref="IDestination{T}"/> must keep, as checks that throw <see cref="ContractViolationException"/>.
/// Test-framework agnostic: derive, implement <see cref="CreateAsync"/> and <see cref="CreateMessage"/>, and call the checks.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// Checked: a token is acked only once its messages are durable, and after <see cref="IDestination{T}.FlushAsync"/>
/// every message is durable and every token acked (acks iff durable); after <see cref="IDestination{T}.CommitHeldAsync"/>
/// every token sent before it is settled, and the destination keeps working; no token gets two outcomes; a send with several
/// messages is acked once; a failing write never acks (the send throws and leaves the token, or the token is nacked or
/// terminated). Uses <see cref="AckCheckingDestination{T}"/>.
/// </remarks>
public abstract class DestinationContract<T>
{
    /// <summary>The longest a check waits for the destination. Default 10 seconds.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Creates a fresh destination.</summary>
    protected abstract ValueTask<DestinationUnderTest<T>> CreateAsync();

    /// <summary>Creates the <paramref name="index"/>th test message; payloads must be distinct.</summary>
    /// <param name="index">0, 1, 2, ...</param>
    protected abstract Message<T> CreateMessage(int index);

    /// <summary>Acks only durable messages, and after the drain every message is durable and acked.</summary>
    public async Task AcksIfAndOnlyIfDurableAsync()
    {
        var under = await CreateAsync().ConfigureAwait(false);
        try
        {
            var checker = new AckCheckingDestination<T>(under.Destination, under.IsDurable);
            var tokens = new List<RecordingAckToken>();
            var messages = Enumerable.Range(0, 5).Select(CreateMessage).ToArray();
            foreach (var message in messages)
            {
                var token = new RecordingAckToken();
                tokens.Add(token);
                await WithTimeout(checker.SendAsync(token, message).AsTask(), "SendAsync").ConfigureAwait(false);
            }

            await WithTimeout(checker.FlushAsync().AsTask(), "FlushAsync").ConfigureAwait(false);
            checker.ThrowIfViolated();
            checker.ThrowIfUnsettled("after FlushAsync");
            for (var i = 0; i < messages.Length; i++)
            {
                if (!under.IsDurable(messages[i]))
                {
                    throw new ContractViolationException($"Message {i} was not durable after FlushAsync.");
                }

                if (tokens[i].Outcome != AckOutcome.Acked)
                {
                    throw new ContractViolationException($"Message {i} is durable but its token ended {tokens[i].Outcome?.ToString() ?? "unsettled"} instead of acked.");
                }
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>A send of several messages is settled once, after all of them are durable; no token reaches the source twice.</summary>
    public async Task SendOfSeveralIsAckedOnceAsync()
    {
        var under = await CreateAsync().ConfigureAwait(false);
        try
        {
            var checker = new AckCheckingDestination<T>(under.Destination, under.IsDurable);
            var token = new RecordingAckToken();
            var single = new RecordingAckToken();
            await WithTimeout(checker.SendAsync(token, new Messages<T>([CreateMessage(0), CreateMessage(1), CreateMessage(2)])).AsTask(), "SendAsync").ConfigureAwait(false);
            await WithTimeout(checker.SendAsync(single, CreateMessage(3)).AsTask(), "SendAsync").ConfigureAwait(false);
            await WithTimeout(checker.FlushAsync().AsTask(), "FlushAsync").ConfigureAwait(false);

            checker.ThrowIfViolated();
            foreach (var t in new[] { token, single })
            {
                if (t.Completions != 1)
                {
                    throw new ContractViolationException($"A token was settled {t.Completions} time(s); exactly once is the rule.");
                }

            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>After <see cref="IDestination{T}.FlushAsync"/>, every token the destination kept has an outcome.</summary>
    public async Task FlushSettlesEverythingHeldAsync()
    {
        var under = await CreateAsync().ConfigureAwait(false);
        try
        {
            var checker = new AckCheckingDestination<T>(under.Destination, under.IsDurable);
            for (var i = 0; i < 7; i++)
            {
                await WithTimeout(checker.SendAsync(new RecordingAckToken(), CreateMessage(i)).AsTask(), "SendAsync").ConfigureAwait(false);
            }

            await WithTimeout(checker.FlushAsync().AsTask(), "FlushAsync").ConfigureAwait(false);
            checker.ThrowIfUnsettled("after FlushAsync");
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>After <see cref="IDestination{T}.CommitHeldAsync"/> (the pipeline's checkpoint when its source is idle) every
    /// token sent before it is settled and acked only if durable; the destination keeps accepting messages afterwards.</summary>
    public async Task CommitHeldSettlesEverythingSentAsync()
    {
        var under = await CreateAsync().ConfigureAwait(false);
        try
        {
            var checker = new AckCheckingDestination<T>(under.Destination, under.IsDurable);
            var tokens = new List<RecordingAckToken>();
            for (var i = 0; i < 7; i++)
            {
                var token = new RecordingAckToken();
                tokens.Add(token);
                await WithTimeout(checker.SendAsync(token, CreateMessage(i)).AsTask(), "SendAsync").ConfigureAwait(false);
            }

            await WithTimeout(checker.CommitHeldAsync().AsTask(), "CommitHeldAsync").ConfigureAwait(false);
            checker.ThrowIfViolated();
            checker.ThrowIfUnsettled("after CommitHeldAsync");
            if (tokens.Find(t => t.Outcome != AckOutcome.Acked) is { } notAcked)
            {
                throw new ContractViolationException($"A token ended {notAcked.Outcome?.ToString() ?? "unsettled"} at CommitHeldAsync although every write worked; it must be acked.");
            }

            // A checkpoint is not the end: the destination must go on writing and acking.
            var later = new RecordingAckToken();
            await WithTimeout(checker.SendAsync(later, CreateMessage(7)).AsTask(), "SendAsync after CommitHeldAsync").ConfigureAwait(false);
            await WithTimeout(checker.FlushAsync().AsTask(), "FlushAsync").ConfigureAwait(false);
            checker.ThrowIfViolated();
            if (later.Outcome != AckOutcome.Acked)
            {
                throw new ContractViolationException($"A message sent after CommitHeldAsync ended {later.Outcome?.ToString() ?? "unsettled"} after FlushAsync instead of acked.");
            }
        }
        finally
        {
            await CleanupAsync(under).ConfigureAwait(false);
        }
    }

    /// <summary>When writes fail, no token is acked: the send throws (leaving the token to the caller) or the token is nacked or terminated.</summary>
    public async Task FailingWriteDoesNotAckAsync()
    {
        var under = await CreateAsync().ConfigureAwait(false);
        try
        {
            var checker = new AckCheckingDestination<T>(under.Destination, under.IsDurable);
            under.BreakWrites();
            var tokens = new List<RecordingAckToken>();
            for (var i = 0; i < 3; i++)
            {
                var token = new RecordingAckToken();
                tokens.Add(token);
                try
                {
                    await WithTimeout(checker.SendAsync(token, CreateMessage(i)).AsTask(), "SendAsync").ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not ContractViolationException)
                {
                    // Throwing is one legitimate answer to a failed write.
                }
            }

            try
            {
                await WithTimeout(checker.FlushAsync().AsTask(), "FlushAsync").ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not ContractViolationException)
            {
                // A drain may surface the write failure too.
            }

            checker.ThrowIfViolated();
            for (var i = 0; i < tokens.Count; i++)
            {
                if (tokens[i].Outcome?.Kind == AckKind.Ack)
                {
                    throw new ContractViolationException($"Message {i} was acked although every write failed.");
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
        await AcksIfAndOnlyIfDurableAsync().ConfigureAwait(false);
        await SendOfSeveralIsAckedOnceAsync().ConfigureAwait(false);
        await FlushSettlesEverythingHeldAsync().ConfigureAwait(false);
        await CommitHeldSettlesEverythingSentAsync().ConfigureAwait(false);
        await FailingWriteDoesNotAckAsync().ConfigureAwait(false);
    }

    private async Task WithTimeout(Task task, string what)
    {
        try
        {
            await task.WaitAsync(MaxWait).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new ContractViolationException($"{what} did not return within {MaxWait}.");
        }
    }

    private static async ValueTask CleanupAsync(DestinationUnderTest<T> under)
    {
        if (under.Cleanup is not null)
        {
            await under.Cleanup().ConfigureAwait(false);
        }
    }
}

/// <summary>An ack token that records its outcome and counts how often it reached the source.</summary>
/// <remarks>A second <see cref="AckToken.Ack"/> on a token throws <see cref="InvalidOperationException"/> in the component
/// that made it (the base class's rule), so a destination that settles twice fails its send or drain visibly.</remarks>
public sealed class RecordingAckToken : AckToken
{
    private int _completions;

    /// <summary>How many times the outcome reached the source (never more than 1 by the base class's rule).</summary>
    public int Completions => Volatile.Read(ref _completions);

    /// <summary>Keep-alive requests received.</summary>
    public int InProgressCount { get; private set; }

    /// <inheritdoc/>
    protected override void OnCompleted(AckOutcome outcome) => Interlocked.Increment(ref _completions);

    /// <inheritdoc/>
    protected override void OnInProgress() => InProgressCount++;
}
