namespace Kawa.Dataflow.Tests.Infrastructure;

/// <summary>
/// A manual clock for tests: time moves only on <see cref="Advance"/>, which runs every timer that falls due, in due
/// order, on the calling thread. Self-contained (Microsoft.Extensions.TimeProvider.Testing is not available).
/// </summary>
public sealed class FakeTimeProvider : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<FakeTimer> _timers = [];
    private readonly List<(int Count, TaskCompletionSource Signal)> _waiters = [];
    private readonly List<(int Count, TaskCompletionSource Signal)> _createdWaiters = [];
    private DateTimeOffset _now;
    private int _created;

    public FakeTimeProvider(DateTimeOffset? start = null) => _now = start ?? new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Timers created so far whose due time is set (not yet fired or disposed).</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_lock)
            {
                return _timers.Count(t => t.Due is not null);
            }
        }
    }

    /// <summary>How many timers were created so far, whatever became of them.</summary>
    public int TimersCreated
    {
        get
        {
            lock (_lock)
            {
                return _created;
            }
        }
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock)
        {
            return _now;
        }
    }

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => GetUtcNow().UtcTicks;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new FakeTimer(this, callback, state);
        List<TaskCompletionSource> ready = [];
        lock (_lock)
        {
            _timers.Add(timer);
            _created++;
            for (var i = _createdWaiters.Count - 1; i >= 0; i--)
            {
                if (_created >= _createdWaiters[i].Count)
                {
                    ready.Add(_createdWaiters[i].Signal);
                    _createdWaiters.RemoveAt(i);
                }
            }
        }

        timer.Change(dueTime, period);
        foreach (var signal in ready)
        {
            signal.TrySetResult();
        }

        return timer;
    }

    /// <summary>Completes once at least <paramref name="count"/> timers have been created in total (armed or not).</summary>
    public Task WaitForTimersCreatedAsync(int count)
    {
        lock (_lock)
        {
            if (_created >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _createdWaiters.Add((count, signal));
            return signal.Task;
        }
    }

    /// <summary>Completes when at least <paramref name="count"/> timers are active: lets a test advance time only once
    /// the code under test has armed its timer (a retry delay, a timeout), without sleeping.</summary>
    public Task WaitForActiveTimersAsync(int count)
    {
        lock (_lock)
        {
            if (_timers.Count(t => t.Due is not null) >= count)
            {
                return Task.CompletedTask;
            }

            var signal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((count, signal));
            return signal.Task;
        }
    }

    /// <summary>Moves time forward by <paramref name="delta"/>, firing due timers (periodic ones as often as they fall due).</summary>
    public void Advance(TimeSpan delta)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delta, TimeSpan.Zero);
        DateTimeOffset target;
        lock (_lock)
        {
            target = _now + delta;
        }

        while (true)
        {
            FakeTimer? next = null;
            lock (_lock)
            {
                foreach (var timer in _timers)
                {
                    if (timer.Due is { } due && due <= target && (next is null || due < next.Due))
                    {
                        next = timer;
                    }
                }

                if (next is null)
                {
                    _now = target;
                    return;
                }

                _now = next.Due!.Value;
                next.Due = next.Period is { } period ? _now + period : null;
            }

            next.Fire();
        }
    }

    private void OnTimerArmed()
    {
        List<TaskCompletionSource> ready = [];
        lock (_lock)
        {
            var active = _timers.Count(t => t.Due is not null);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Count <= active)
                {
                    ready.Add(_waiters[i].Signal);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var signal in ready)
        {
            signal.TrySetResult();
        }
    }

    private sealed class FakeTimer(FakeTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public TimeSpan? Period { get; private set; }

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                Due = dueTime == Timeout.InfiniteTimeSpan ? null : owner._now + dueTime;
                Period = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? null : period;
            }

            if (Due is not null)
            {
                owner.OnTimerArmed();
            }

            return true;
        }

        public void Fire() => callback(state);

        public void Dispose()
        {
            lock (owner._lock)
            {
                Due = null;
                owner._timers.Remove(this);
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
