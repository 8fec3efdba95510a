namespace Kawa.Dataflow;

/// <summary>Transforms one message into zero or more: parse, filter, enrich, split.</summary>
/// <typeparam name="TIn">The input payload type.</typeparam>
/// <typeparam name="TOut">The output payload type.</typeparam>
/// <remarks>
/// <list type="bullet">
/// <item>One message in; zero, one or many out (<see cref="Messages{T}"/>). Zero means the input is finished:
/// the pipeline acks it. Many means fan-out: the input is settled once every output has been.</item>
/// <item>A handler never sees ack tokens and cannot ack.</item>
/// <item>The stage's options decide concurrency: a handler may run on several messages at once unless the stage
/// is key-ordered or has a parallelism of one.</item>
/// <item>An exception goes to the stage's error policy (fatal by default, like Kawa): retry, negative-ack,
/// dead-letter or skip. <see cref="OperationCanceledException"/> after <c>cancellationToken</c> fired is not an
/// error: the message is negatively acked for redelivery.</item>
/// </list>
/// </remarks>
public interface IHandler<TIn, TOut>
{
    /// <summary>Handles one message.</summary>
    /// <param name="message">The input.</param>
    /// <param name="cancellationToken">Fires when the pipeline stops without draining (drain timeout, fatal error).</param>
    ValueTask<Messages<TOut>> HandleAsync(Message<TIn> message, CancellationToken cancellationToken = default);
}

/// <summary>A handler built from a delegate.</summary>
/// <typeparam name="TIn">The input payload type.</typeparam>
/// <typeparam name="TOut">The output payload type.</typeparam>
/// <param name="handle">Handles one message; the rules of <see cref="IHandler{TIn, TOut}"/> apply.</param>
public sealed class HandlerFunc<TIn, TOut>(Func<Message<TIn>, CancellationToken, ValueTask<Messages<TOut>>> handle) : IHandler<TIn, TOut>
{
    private readonly Func<Message<TIn>, CancellationToken, ValueTask<Messages<TOut>>> _handle = handle ?? throw new ArgumentNullException(nameof(handle));

    /// <inheritdoc/>
    public ValueTask<Messages<TOut>> HandleAsync(Message<TIn> message, CancellationToken cancellationToken = default) => _handle(message, cancellationToken);
}

/// <summary>Ready-made handlers and delegate shortcuts.</summary>
public static class Handler
{
    /// <summary>Passes every message through unchanged (Kawa's <c>Pipe</c>).</summary>
    public static IHandler<T, T> Pipe<T>() => PipeHandler<T>.Instance;

    /// <summary>A handler from an asynchronous delegate.</summary>
    public static IHandler<TIn, TOut> Create<TIn, TOut>(Func<Message<TIn>, CancellationToken, ValueTask<Messages<TOut>>> handle) => new HandlerFunc<TIn, TOut>(handle);

    /// <summary>A one-to-one handler from a synchronous delegate.</summary>
    public static IHandler<TIn, TOut> Map<TIn, TOut>(Func<Message<TIn>, Message<TOut>> map)
    {
        ArgumentNullException.ThrowIfNull(map);
        return new MapHandler<TIn, TOut>(map);
    }

    /// <summary>Keeps the messages <paramref name="predicate"/> accepts; the others are finished (acked) here.</summary>
    public static IHandler<T, T> Filter<T>(Func<Message<T>, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        return new FilterHandler<T>(predicate);
    }

    // Classes of their own rather than a HandlerFunc over a closure: one delegate call per message instead of two.
    internal sealed class MapHandler<TIn, TOut>(Func<Message<TIn>, Message<TOut>> map) : IHandler<TIn, TOut>
    {
        /// <summary>The delegate, which a handler stage calls directly (no <see cref="Messages{T}"/> or task to unwrap).</summary>
        public Func<Message<TIn>, Message<TOut>> Map => map;

        public ValueTask<Messages<TOut>> HandleAsync(Message<TIn> message, CancellationToken cancellationToken = default) => new(new Messages<TOut>(map(message)));
    }

    private sealed class FilterHandler<T>(Func<Message<T>, bool> predicate) : IHandler<T, T>
    {
        public ValueTask<Messages<T>> HandleAsync(Message<T> message, CancellationToken cancellationToken = default) => new(predicate(message) ? new Messages<T>(message) : Messages<T>.None);
    }

    private sealed class PipeHandler<T> : IHandler<T, T>
    {
        public static readonly PipeHandler<T> Instance = new();

        public ValueTask<Messages<T>> HandleAsync(Message<T> message, CancellationToken cancellationToken = default) => new(message);
    }
}
