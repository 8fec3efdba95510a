using System.Diagnostics.CodeAnalysis;
using System.Runtime.ExceptionServices;

namespace Kawa.Dataflow;

public static partial class Sources
{
    /// <summary>Merges several sources into one that delivers whichever has a message first.</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="sources">The sources; at least one.</param>
    /// <remarks>
    /// <list type="bullet">
    /// <item>Ends when every source has ended. An exception from any source is fatal: it is rethrown from
    /// <see cref="ISource{T}.ReceiveAsync"/>, then and on every later receive. Before it is rethrown, the other sources'
    /// outstanding receives are cancelled and a message they had already read is negatively acked (it was never
    /// delivered, so nothing else would settle it).</item>
    /// <item>A source's <see cref="Delivery{T}.Idle"/> is passed on as it is, so the pipeline commits what its destinations
    /// hold for that source (a commit while other sources still deliver only makes smaller files).</item>
    /// <item>Each source has at most one receive outstanding (the contract's "never concurrently" holds per source), so
    /// at most one message per source is held ahead. Sources are served round-robin when several are ready.</item>
    /// <item>Cancelling a receive stops the wait only: outstanding receives on the sources continue and their messages
    /// are delivered by the next receive. Dispose the merged source to cancel them; a message that arrives after that is
    /// negatively acked.</item>
    /// <item>Tokens are the sources' own: outcomes go straight back to the source that delivered the message.</item>
    /// </list>
    /// </remarks>
    public static MergedSource<T> Merge<T>(params ISource<T>[] sources) => new(sources);
}

/// <summary>Several sources read as one; see <see cref="Sources.Merge{T}(ISource{T}[])"/>.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class MergedSource<T> : ISource<T>, IAsyncDisposable
{
    private readonly ISource<T>[] _sources;
    private readonly Task<Delivery<T>>?[] _pending;
    private readonly bool[] _ended;
    private readonly CancellationTokenSource _stop = new();
    private ExceptionDispatchInfo? _failure;
    private int _remaining;
    private int _next;

    internal MergedSource(ISource<T>[] sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        if (sources.Length == 0)
        {
            throw new ArgumentException("Merge needs at least one source.", nameof(sources));
        }

        for (var i = 0; i < sources.Length; i++)
        {
            if (sources[i] is null)
            {
                throw new ArgumentException($"Source {i} is null.", nameof(sources));
            }
        }

        _sources = [.. sources];
        _pending = new Task<Delivery<T>>?[sources.Length];
        _ended = new bool[sources.Length];
        _remaining = sources.Length;
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        _failure?.Throw();
        ObjectDisposedException.ThrowIf(_stop.IsCancellationRequested, this);
        while (_remaining > 0)
        {
            var waiting = new List<Task<Delivery<T>>>(_sources.Length);
            for (var n = 0; n < _sources.Length; n++)
            {
                var i = (_next + n) % _sources.Length;
                if (_ended[i])
                {
                    continue;
                }

                var pending = _pending[i] ??= _sources[i].ReceiveAsync(_stop.Token).AsTask();
                if (pending.IsCompleted)
                {
                    _pending[i] = null;
                    _next = (i + 1) % _sources.Length;
                    if (!pending.IsCompletedSuccessfully)
                    {
                        Fail(pending); // a source's failure is fatal
                    }

                    var delivery = pending.Result;
                    if (!delivery.IsEndOfStream)
                    {
                        return delivery; // a message, or Idle
                    }

                    _ended[i] = true;
                    _remaining--;
                    waiting.Clear();
                    n = -1; // rescan: another source may be ready too
                    continue;
                }

                waiting.Add(pending);
            }

            if (waiting.Count > 0)
            {
                await Task.WhenAny(waiting).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }

        return Delivery<T>.EndOfStream;
    }

    /// <summary>Cancels outstanding receives; a message they still deliver is negatively acked.</summary>
    public ValueTask DisposeAsync() => StopAsync();

    // One source failed: the merged source fails for good. The others' outstanding receives are cancelled, without
    // waiting for them (a source slow to honour cancellation must not hold up the failure), and a message one of them
    // still delivers is negatively acked: nothing else would ever settle it.
    [DoesNotReturn]
    private void Fail(Task<Delivery<T>> failed)
    {
        _failure = ExceptionDispatchInfo.Capture(failed.Exception?.InnerException ?? new TaskCanceledException(failed));
        _stop.Cancel();
        for (var i = 0; i < _pending.Length; i++)
        {
            _pending[i]?.ContinueWith(
                static t =>
                {
                    if (t.IsCompletedSuccessfully && !t.Result.IsEndOfStream && !t.Result.IsIdle)
                    {
                        t.Result.Ack.TryComplete(AckOutcome.Negative());
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
            _pending[i] = null;
        }

        _failure.Throw();
    }

    private async ValueTask StopAsync()
    {
        if (_stop.IsCancellationRequested)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        for (var i = 0; i < _pending.Length; i++)
        {
            var pending = _pending[i];
            _pending[i] = null;
            if (pending is null)
            {
                continue;
            }

            try
            {
                var delivery = await pending.ConfigureAwait(false);
                if (!delivery.IsEndOfStream && !delivery.IsIdle)
                {
                    delivery.Ack.TryComplete(AckOutcome.Negative());
                }
            }
            catch (Exception)
            {
                // Stopping: a source's cancellation or failure no longer matters.
            }
        }
    }
}
