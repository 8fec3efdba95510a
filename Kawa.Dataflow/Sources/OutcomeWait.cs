namespace Kawa.Dataflow;

/// <summary>
/// How a replaying source (every record read, outcomes still to come) waits: for the next outcome, or until its next
/// redelivery is due, whichever is first. Shared by the line and Parquet replay sources.
/// </summary>
internal static class OutcomeWait
{
    /// <summary>
    /// Waits for <paramref name="outcome"/> or, when <paramref name="due"/> is given, until that much time has passed on
    /// <paramref name="time"/> (the source's clock: a semaphore or task timeout would be wall time). Returns either way;
    /// the caller looks at its state again. Throws <see cref="OperationCanceledException"/> only when there is no due
    /// time and <paramref name="cancellationToken"/> fires; with one, a cancelled wait simply returns.
    /// </summary>
    /// <param name="outcome">Starts waiting for the next outcome; cancelled through its token when the due time wins.</param>
    /// <param name="due">How long until the next redelivery is due, or <see langword="null"/> for none.</param>
    /// <param name="time">The source's clock.</param>
    /// <param name="cancellationToken">The receive's token.</param>
    public static async Task ForOutcomeOrDueAsync(Func<CancellationToken, Task> outcome, TimeSpan? due, TimeProvider time, CancellationToken cancellationToken)
    {
        if (due is not { } delay)
        {
            await outcome(cancellationToken).ConfigureAwait(false);
            return;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var arrived = outcome(stop.Token);
        await Task.WhenAny(arrived, Task.Delay(delay, time, stop.Token)).ConfigureAwait(false);

        // Synchronously: CancelAsync would yield, and a caller advancing a manual clock right after this receive
        // returned could then move time before the next wait's timer exists.
        stop.Cancel();
        try
        {
            await arrived.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The due time came first (or the receive was cancelled: the caller checks that).
        }
    }
}
