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
/// <item>The pipeline may call <see cref="SendAsync"/> concurrently up to the destination stage's parallelism.</item>
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
