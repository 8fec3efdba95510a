using System.Threading.Channels;
using Kawa.Dataflow.Nats.Client;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Options of a <see cref="NatsSource"/>.</summary>
public sealed class NatsSourceOptions
{
    /// <summary>The subject to subscribe to; wildcards allowed (required).</summary>
    public string Subject { get; set; } = string.Empty;

    /// <summary>A queue group: subscribers in the same group share the messages; <see langword="null"/> (the default) for none.</summary>
    public string? QueueGroup { get; set; }

    /// <summary>Messages buffered between the connection and the pipeline; default 1024. When full, messages are
    /// DROPPED (counted in <c>nats.messages.dropped</c>), as the server does with slow consumers.</summary>
    public int Capacity { get; set; } = 1024;

    /// <summary>Every problem, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(Subject) || Subject.Any(char.IsWhiteSpace))
        {
            errors.Add($"{nameof(Subject)}: required, without whitespace (was '{Subject}').");
        }

        if (QueueGroup is not null && (QueueGroup.Length == 0 || QueueGroup.Any(char.IsWhiteSpace)))
        {
            errors.Add($"{nameof(QueueGroup)}: must be non-empty without whitespace when set.");
        }

        if (Capacity < 1)
        {
            errors.Add($"{nameof(Capacity)}: must be at least 1 (was {Capacity}).");
        }

        return errors;
    }
}

/// <summary>
/// A core NATS subscription as a source. <b>At-most-once</b>: core NATS keeps nothing, so its ack tokens are no-ops;
/// a message lost in a crash, a disconnect or a full buffer is gone. Use <see cref="NatsJetStreamSource"/> when every
/// message matters.
/// </summary>
/// <remarks>The stream ends (<see cref="Delivery{T}.EndOfStream"/>) when the connection is closed on purpose; a
/// connection that closes with an error fails the receive with a <see cref="NatsConnectionException"/>.</remarks>
public sealed class NatsSource : ISource<byte[]>, IAsyncDisposable
{
    private readonly NatsConnection _connection;
    private readonly bool _ownsConnection;
    private readonly NatsSubscription _subscription;

    private NatsSource(NatsConnection connection, bool ownsConnection, NatsSubscription subscription)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
        _subscription = subscription;
    }

    /// <summary>Messages dropped because the buffer was full.</summary>
    public long DroppedMessages => _subscription.DroppedMessages;

    /// <summary>Connects and subscribes; the subscription is live on the server when this returns. The source owns the
    /// connection and closes it on dispose.</summary>
    /// <param name="connection">How to reach NATS.</param>
    /// <param name="options">Subject, queue group and buffer.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <param name="timeProvider">The clock for timestamps; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public static async Task<NatsSource> StartAsync(NatsConnectionOptions connection, NatsSourceOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ThrowIfInvalid(options);
        return await OwnedConnection.OpenAsync(
            connection,
            loggerFactory,
            timeProvider,
            (nats, ct) => StartAsync(nats, ownsConnection: true, options, ct),
            cancellationToken).ConfigureAwait(false);
    }

    internal static async Task<NatsSource> StartAsync(NatsConnection connection, bool ownsConnection, NatsSourceOptions options, CancellationToken cancellationToken = default)
    {
        ThrowIfInvalid(options);
        var subscription = await connection.SubscribeAsync(options.Subject, options.QueueGroup, options.Capacity, cancellationToken).ConfigureAwait(false);

        // PING/PONG: once the server answered, it has processed the SUB, so the subscription is live when start returns.
        await connection.FlushAsync(cancellationToken).ConfigureAwait(false);
        return new NatsSource(connection, ownsConnection, subscription);
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<byte[]>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        NatsMsg msg;
        try
        {
            msg = await _subscription.Messages.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException ex) when (ex.InnerException is not null)
        {
            throw new NatsConnectionException($"The NATS connection under subscription '{_subscription.Subject}' closed: {ex.InnerException.Message}", ex.InnerException);
        }
        catch (ChannelClosedException)
        {
            return Delivery<byte[]>.EndOfStream;
        }

        var attributes = MessageAttributes.FromProvider(new NatsCoreAttributes(msg, _connection.TimeProvider.GetUtcNow()));
        return new Delivery<byte[]>(new Message<byte[]>(msg.Data, Topic: msg.Subject, Attributes: attributes), AckToken.None());
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await _subscription.UnsubscribeAsync().ConfigureAwait(false);
        }
        catch (NatsException)
        {
            // The connection is gone; so is the subscription.
        }

        if (_ownsConnection)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static void ThrowIfInvalid(NatsSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid NatsSourceOptions: " + string.Join(" ", errors), nameof(options));
        }
    }
}
