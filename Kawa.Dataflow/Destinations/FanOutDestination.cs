namespace Kawa.Dataflow;

/// <summary>
/// A destination that sends every message to several destinations: the token is acked only when all of them acked.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>Each destination gets the same messages with its own token, concurrently. The original token is settled once
/// every destination settled its own: acked if all acked; otherwise the worst outcome (terminate over nack; among nacks
/// the longest delay). A keep-alive (<see cref="AckToken.InProgress"/>) on any destination's token reaches the original.</item>
/// <item>A destination that throws is fatal: <see cref="SendAsync"/> rethrows (all errors, as an
/// <see cref="AggregateException"/> when several threw) and the original token is left to the caller, even if other
/// destinations ack later (those writes will be repeated on redelivery: at-least-once).</item>
/// <item><see cref="FlushAsync"/> drains every destination, and <see cref="CommitHeldAsync"/> commits every
/// destination's held messages, concurrently.</item>
/// </list>
/// </remarks>
public sealed class FanOutDestination<T> : IDestination<T>, IPipelineMember
{
    private readonly IDestination<T>[] _destinations;

    /// <summary>Creates the fan-out.</summary>
    /// <param name="destinations">The destinations; at least one.</param>
    public FanOutDestination(params IDestination<T>[] destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        if (destinations.Length == 0 || Array.Exists(destinations, d => d is null))
        {
            throw new ArgumentException("A fan-out needs at least one destination, and none may be null.", nameof(destinations));
        }

        _destinations = [.. destinations];
    }

    /// <inheritdoc/>
    public async ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ack);
        var group = new AckGroup(ack, _destinations.Length, null);
        var sends = new Task[_destinations.Length];
        for (var i = 0; i < _destinations.Length; i++)
        {
            var child = AckToken.Create(group.MessageSettled, group.InProgress);
            sends[i] = DestinationTasks.SendAsync(_destinations[i], child, messages, cancellationToken);
        }

        await DestinationTasks.WhenAllOrAbandonAsync(sends, group).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => DestinationTasks.FlushAsync(_destinations, cancellationToken);

    /// <inheritdoc/>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => DestinationTasks.CommitHeldAsync(_destinations, cancellationToken);

    void IPipelineMember.JoinPipeline(string pipeline) => PipelineMember.Join(_destinations, pipeline);

    TimeSpan IPipelineMember.LongestHold => PipelineMember.LongestHold(_destinations);
}

/// <summary>Awaiting several destinations' tasks.</summary>
internal static class DestinationTasks
{
    /// <summary>Waits for all; if any threw, lets go of the shared token (the caller settles it) and rethrows.</summary>
    public static async Task WhenAllOrAbandonAsync(Task[] tasks, AckGroup group)
    {
        try
        {
            await WhenAllAsync(tasks).ConfigureAwait(false);
        }
        catch
        {
            group.Abandon();
            throw;
        }
    }

    /// <summary>One destination's send as a task; a synchronous throw becomes a faulted task.</summary>
    public static Task SendAsync<T>(IDestination<T> destination, AckToken token, Messages<T> messages, CancellationToken cancellationToken)
    {
        try
        {
            return destination.SendAsync(token, messages, cancellationToken).AsTask();
        }
        catch (Exception ex)
        {
            return Task.FromException(ex);
        }
    }

    /// <summary>Calls <see cref="IDestination{T}.FlushAsync"/> on every destination concurrently and waits for all.</summary>
    public static ValueTask FlushAsync<T>(IDestination<T>[] destinations, CancellationToken cancellationToken)
        => OnAllAsync(destinations, static (d, ct) => d.FlushAsync(ct), cancellationToken);

    /// <summary>Calls <see cref="IDestination{T}.CommitHeldAsync"/> on every destination concurrently and waits for all.</summary>
    public static ValueTask CommitHeldAsync<T>(IDestination<T>[] destinations, CancellationToken cancellationToken)
        => OnAllAsync(destinations, static (d, ct) => d.CommitHeldAsync(ct), cancellationToken);

    private static async ValueTask OnAllAsync<T>(IDestination<T>[] destinations, Func<IDestination<T>, CancellationToken, ValueTask> call, CancellationToken cancellationToken)
    {
        var calls = new Task[destinations.Length];
        for (var i = 0; i < destinations.Length; i++)
        {
            try
            {
                calls[i] = call(destinations[i], cancellationToken).AsTask();
            }
            catch (Exception ex)
            {
                calls[i] = Task.FromException(ex);
            }
        }

        await WhenAllAsync(calls).ConfigureAwait(false);
    }

    /// <summary>Waits for all; rethrows the only error as is, several as an <see cref="AggregateException"/>.</summary>
    public static async Task WhenAllAsync(Task[] tasks)
    {
        var all = Task.WhenAll(tasks);
        try
        {
            await all.ConfigureAwait(false);
        }
        catch when (all.Exception is { InnerExceptions.Count: > 1 } aggregate)
        {
            throw aggregate.Flatten();
        }
    }
}
