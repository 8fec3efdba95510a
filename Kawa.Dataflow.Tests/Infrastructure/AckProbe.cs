namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>An ack token that records every outcome it is given, and signals the first, for tests to await.</summary>
public sealed class AckProbe : AckToken
{
    private readonly TaskCompletionSource<AckOutcome> _settled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _completions;
    private int _inProgress;

    /// <summary>The final outcome, once given.</summary>
    public Task<AckOutcome> Settled => _settled.Task;

    /// <summary>How many times the source was told a final outcome (must never exceed 1).</summary>
    public int Completions => Volatile.Read(ref _completions);

    /// <summary>How many keep-alive requests reached the source.</summary>
    public int InProgressCount => Volatile.Read(ref _inProgress);

    /// <summary>Waits for the outcome, failing the test after <paramref name="timeout"/> (default 10 s) instead of hanging.</summary>
    public async Task<AckOutcome> WaitAsync(TimeSpan? timeout = null) => await Settled.WaitAsync(timeout ?? TimeSpan.FromSeconds(10));

    protected override void OnCompleted(AckOutcome outcome)
    {
        Interlocked.Increment(ref _completions);
        _settled.TrySetResult(outcome);
    }

    protected override void OnInProgress() => Interlocked.Increment(ref _inProgress);
}
