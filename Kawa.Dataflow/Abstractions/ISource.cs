namespace Kawa.Dataflow;

/// <summary>Where messages come from: a stream, a subscription, a file, a collection.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <para>The pipeline calls <see cref="ReceiveAsync"/> never concurrently (from one pump loop, or from workers that take
/// turns under a gate when the stages run to completion, so not always from the same thread), and only when it has
/// room: a source never has to buffer beyond its own prefetch, and a slow sink stops it being read.</para>
/// <list type="bullet">
/// <item>Each call returns one message with a fresh <see cref="AckToken"/>, or <see cref="Delivery{T}.EndOfStream"/>
/// when a finite source is exhausted; after that the pipeline drains and completes normally.</item>
/// <item>Cancellation: when <c>cancellationToken</c> fires, stop waiting and throw <see cref="OperationCanceledException"/>;
/// the pipeline treats that as the start of a graceful drain, not an error.</item>
/// <item>Any other exception is fatal: the pipeline stops, surfacing it wrapped as stage <c>source</c>.</item>
/// <item>The source learns each message's fate only through its token. It must keep working (settling
/// outcomes) until every token it handed out has its final outcome, even after end of stream.</item>
/// <item>Return <see cref="Delivery{T}.Idle"/> when there is nothing more to deliver right now and the source is
/// waiting for the outcomes of what it handed out (a finite or drain-mode source that ends, or redelivers, only once
/// they are settled). A destination may hold messages until a size or age limit (a Parquet file commits on rows,
/// bytes or age), so without Idle such a source would wait for that limit. On Idle the pipeline hands on what it
/// holds, waits until every message read so far has been settled or passed to the destination, calls
/// <see cref="IDestination{T}.CommitHeldAsync"/> (which settles what the destination held), and then calls
/// <see cref="ReceiveAsync"/> again. Return Idle once per idle period, then wait as usual: returning it in a loop
/// makes the destinations commit small files over and over.</item>
/// </list>
/// </remarks>
public interface ISource<T>
{
    /// <summary>Waits for the next message.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default);
}

/// <summary>A source built from a delegate.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <param name="receive">Returns the next delivery; the rules of <see cref="ISource{T}"/> apply.</param>
public sealed class SourceFunc<T>(Func<CancellationToken, ValueTask<Delivery<T>>> receive) : ISource<T>
{
    private readonly Func<CancellationToken, ValueTask<Delivery<T>>> _receive = receive ?? throw new ArgumentNullException(nameof(receive));

    /// <inheritdoc/>
    public ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default) => _receive(cancellationToken);
}
