using System.Threading.Channels;

namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>
/// A batch flusher whose every call waits for the test to decide: <see cref="NextAsync"/> returns the call, then the
/// test completes it with <see cref="FlushCall{T}.Succeed"/> or <see cref="FlushCall{T}.Fail"/>. Tracks concurrency.
/// </summary>
public sealed class ScriptedFlusher<T> : IBatchFlusher<T>
{
    private readonly Channel<FlushCall<T>> _calls = Channel.CreateUnbounded<FlushCall<T>>();
    private int _running;
    private int _maxRunning;

    /// <summary>Whether flushes observe their cancellation token (true) or ignore it like a hung write (false).</summary>
    public bool HonourCancellation { get; init; } = true;

    /// <summary>Runs inside each flush before it waits for the test (for example to defer acks).</summary>
    public Action<FlushCall<T>>? OnCall { get; init; }

    /// <summary>Runs at the drain.</summary>
    public Func<CancellationToken, ValueTask>? OnComplete { get; init; }

    public int MaxConcurrent => Volatile.Read(ref _maxRunning);

    public int Started { get; private set; }

    public async ValueTask FlushAsync(Batch<T> batch, CancellationToken cancellationToken)
    {
        var running = Interlocked.Increment(ref _running);
        HighWaterMark.Raise(ref _maxRunning, running);
        try
        {
            var call = new FlushCall<T>(batch, [.. batch.Messages.Select(m => m.Value)], batch.Attempt, cancellationToken);
            Started++;
            OnCall?.Invoke(call);
            _calls.Writer.TryWrite(call);
            var wait = call.Decision.Task;
            await (HonourCancellation ? wait.WaitAsync(cancellationToken) : wait);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public ValueTask CompleteAsync(CancellationToken cancellationToken) => OnComplete?.Invoke(cancellationToken) ?? default;

    /// <summary>Runs at each checkpoint (<see cref="IBatchFlusher{T}.CommitHeldAsync"/>).</summary>
    public Func<CancellationToken, ValueTask>? OnCommitHeld { get; init; }

    public ValueTask CommitHeldAsync(CancellationToken cancellationToken) => OnCommitHeld?.Invoke(cancellationToken) ?? default;

    /// <summary>The next flush call, failing the test after 10 s instead of hanging.</summary>
    public async Task<FlushCall<T>> NextAsync() => await _calls.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

    /// <summary>Whether a flush call is waiting to be read right now.</summary>
    public bool HasPendingCall => _calls.Reader.Count > 0;
}

/// <summary>One flush in progress, held until the test decides.</summary>
public sealed class FlushCall<T>(Batch<T> batch, IReadOnlyList<T> values, int attempt, CancellationToken token)
{
    public Batch<T> Batch { get; } = batch;

    public IReadOnlyList<T> Values { get; } = values;

    public int Attempt { get; } = attempt;

    public CancellationToken Token { get; } = token;

    public DeferredAcks? Deferred { get; set; }

    internal TaskCompletionSource Decision { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Succeed() => Decision.TrySetResult();

    public void Fail(Exception error) => Decision.TrySetException(error);
}
