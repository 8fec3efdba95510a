namespace Kawa.Dataflow;

/// <summary>Where messages end up: a file, a stream, a table. The only component that acks.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item><see cref="SendAsync"/> receives the outputs that belong to one ack token. Call <see cref="AckToken.Ack"/>
/// if and only if all of them are durable; that may be later than the call returns (a batching or file sink acks
/// at flush or commit). Such deferred acks still count against the pipeline's in-flight limits.</item>
/// <item>If the write fails, either throw (fatal: the pipeline stops and negatively acks the token) or settle the
/// token yourself (<see cref="AckToken.Nack"/>, <see cref="AckToken.Terminate"/>) and return. Never both: a destination that
/// throws must not settle that token later.</item>
/// <item><see cref="FlushAsync"/> is the drain: the pipeline calls it once after the last send; make everything held
/// durable and settle every token. If its <c>cancellationToken</c> fires (the drain timeout), settle what is not
/// durable with <see cref="AckToken.Nack"/> and return.</item>
/// <item><see cref="CommitHeldAsync"/> is the checkpoint: the pipeline calls it when its source is idle (see
/// <see cref="Delivery{T}.Idle"/>), after every message read so far was settled or passed to <see cref="SendAsync"/>.
/// Make everything held durable now and settle those tokens, without waiting for size or age limits; the pipeline
/// keeps running afterwards, so it may be called many times. A destination that acks at once needs nothing (the
/// default does nothing).</item>
/// <item>The pipeline may call <see cref="SendAsync"/> concurrently up to the destination stage's parallelism (a
/// <see cref="BatchingDestination{T}"/>, which is thread-safe, up to the handler stages' parallelism when they run to
/// completion).</item>
/// </list>
/// </remarks>
public interface IDestination<T>
{
    /// <summary>Writes <paramref name="messages"/>; acks <paramref name="ack"/> once they are durable.</summary>
    /// <param name="ack">The token for these messages.</param>
    /// <param name="messages">The outputs that share <paramref name="ack"/> (usually one).</param>
    /// <param name="cancellationToken">Fires when the pipeline stops without draining.</param>
    ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default);

    /// <summary>Makes everything held durable and settles every token it holds. Called once when the pipeline drains.</summary>
    /// <param name="cancellationToken">Fires at the drain timeout: negatively ack what is not yet durable, then return.</param>
    ValueTask FlushAsync(CancellationToken cancellationToken = default) => default;

    /// <summary>Makes everything held durable now and settles those tokens; the pipeline keeps running. Called when
    /// the source is idle, possibly many times; never concurrently with <see cref="FlushAsync"/>.</summary>
    /// <param name="cancellationToken">Fires when the run aborts (a fatal error or the drain timeout).</param>
    /// <remarks>
    /// <para>Calls to <see cref="SendAsync"/> made before this call have returned. A destination holding messages for a
    /// deferred ack (an open batch, an open file) writes and commits them and acks their tokens; one that acks at once
    /// does nothing (the default).</para>
    /// <para>If the commit fails, settle the affected tokens (<see cref="AckToken.Nack"/>, so the source redelivers them)
    /// and throw: that is fatal, the pipeline stops (stage <c>destination</c>) as for a failing <see cref="FlushAsync"/>.</para>
    /// <para>Wrappers and composites (fan-out, router) forward the call to every destination they hold.</para>
    /// </remarks>
    ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => default;
}

/// <summary>A destination built from a delegate.</summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <param name="send">Writes and acks; the rules of <see cref="IDestination{T}"/> apply.</param>
public sealed class DestinationFunc<T>(Func<AckToken, Messages<T>, CancellationToken, ValueTask> send) : IDestination<T>
{
    private readonly Func<AckToken, Messages<T>, CancellationToken, ValueTask> _send = send ?? throw new ArgumentNullException(nameof(send));

    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default) => _send(ack, messages, cancellationToken);
}
