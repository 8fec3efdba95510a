using Kawa.Dataflow.Nats.Client;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Options of a <see cref="NatsDestination{T}"/>.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class NatsDestinationOptions<T>
{
    /// <summary>The subject: literal, or a template with <c>{subject}</c>, <c>{topic}</c>, <c>{key}</c> or attribute names
    /// in braces. Either this or <see cref="SubjectSelector"/> is required.</summary>
    public string? Subject { get; set; }

    /// <summary>Picks each message's subject; wins over <see cref="Subject"/>.</summary>
    public Func<Message<T>, string>? SubjectSelector { get; set; }

    /// <summary>Turns a payload into bytes; not needed for <c>byte[]</c>, <c>ReadOnlyMemory&lt;byte&gt;</c> and <c>string</c>.</summary>
    public Func<T, ReadOnlyMemory<byte>>? Serializer { get; set; }

    /// <summary>Batch size and age: a batch is published, then the connection is flushed (PING/PONG) before its acks.</summary>
    public BatchingOptions<T> Batching { get; set; } = new();

    /// <summary>Every problem, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var js = new NatsJetStreamDestinationOptions<T> { Subject = Subject, SubjectSelector = SubjectSelector, Serializer = Serializer, Batching = Batching };
        return js.Validate();
    }
}

/// <summary>
/// Publishes to core NATS. <b>At-most-once</b>: a message is acked once the server has read it (the batch is published,
/// then a PING/PONG flush confirms the server processed the bytes), but core NATS stores nothing: subscribers that are
/// offline or slow never see it. Use <see cref="NatsJetStreamDestination{T}"/> for durable output.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>A publish or flush failure fails the batch: the batching sink retries it, then applies its error handler
/// (by default the run stops and the messages are nacked).</remarks>
public sealed class NatsDestination<T> : IDestination<T>, IAsyncDisposable
{
    private readonly NatsConnection _connection;
    private readonly bool _ownsConnection;
    private readonly NatsDestinationOptions<T> _options;
    private readonly NatsSubjectTemplate? _template;
    private readonly Func<T, ReadOnlyMemory<byte>> _serialize;
    private readonly BatchingDestination<T> _batching;

    private NatsDestination(NatsConnection connection, bool ownsConnection, NatsDestinationOptions<T> options, ILoggerFactory? loggerFactory)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
        _options = options;
        _template = options.SubjectSelector is null ? NatsSubjectTemplate.Parse(options.Subject!) : null;
        _serialize = options.Serializer ?? PayloadSerializer.Default<T>();
        _batching = new BatchingDestination<T>(PublishBatchAsync, options.Batching, connection.TimeProvider, loggerFactory);
    }

    /// <summary>Connects and creates the destination; it owns the connection and closes it on dispose.</summary>
    /// <param name="connection">How to reach NATS.</param>
    /// <param name="options">Subject, serializer and batching.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <param name="timeProvider">The clock for batching; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public static async Task<NatsDestination<T>> ConnectAsync(NatsConnectionOptions connection, NatsDestinationOptions<T> options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ThrowIfInvalid(options);
        return await OwnedConnection.OpenAsync(
            connection,
            loggerFactory,
            timeProvider,
            (nats, _) => Task.FromResult(new NatsDestination<T>(nats, ownsConnection: true, options, loggerFactory)),
            cancellationToken).ConfigureAwait(false);
    }

    internal static NatsDestination<T> Create(NatsConnection connection, NatsDestinationOptions<T> options)
    {
        ThrowIfInvalid(options);
        return new NatsDestination<T>(connection, ownsConnection: false, options, null);
    }

    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default) => _batching.SendAsync(ack, messages, cancellationToken);

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => _batching.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public ValueTask CommitHeldAsync(CancellationToken cancellationToken = default) => _batching.CommitHeldAsync(cancellationToken);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _batching.DisposeAsync().ConfigureAwait(false);
        if (_ownsConnection)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async ValueTask PublishBatchAsync(IReadOnlyList<Message<T>> messages, CancellationToken cancellationToken)
    {
        foreach (var message in messages)
        {
            var subject = _options.SubjectSelector?.Invoke(message) ?? _template!.Render(message);
            await _connection.PublishAsync(subject, _serialize(message.Value), null, null, cancellationToken).ConfigureAwait(false);
        }

        await _connection.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    private static void ThrowIfInvalid(NatsDestinationOptions<T> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid NatsDestinationOptions: " + string.Join(" ", errors), nameof(options));
        }
    }
}
