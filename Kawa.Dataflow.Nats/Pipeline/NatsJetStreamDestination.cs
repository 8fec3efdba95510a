using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Protocol;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>Which <c>Nats-Msg-Id</c> a <see cref="NatsJetStreamDestination{T}"/> sets.</summary>
public enum NatsMsgIdMode
{
    /// <summary><c>&lt;source stream&gt;:&lt;stream sequence&gt;:&lt;output path&gt;</c> from the message's attributes (the
    /// default); no id when the message has no stream sequence.</summary>
    SourceSequence,

    /// <summary>The message key; no id when the key is null.</summary>
    Key,

    /// <summary>No id: no de-duplication.</summary>
    None,
}

/// <summary>Options of a <see cref="NatsJetStreamDestination{T}"/>.</summary>
/// <typeparam name="T">The payload type.</typeparam>
public sealed class NatsJetStreamDestinationOptions<T>
{
    /// <summary>The target subject: literal, or with <c>{subject}</c>, <c>{topic}</c>, <c>{key}</c> or attribute names in
    /// braces (e.g. <c>"archive.{subject}"</c>). Either this or <see cref="SubjectSelector"/> is required.</summary>
    public string? Subject { get; set; }

    /// <summary>Picks each message's subject; wins over <see cref="Subject"/>.</summary>
    public Func<Message<T>, string>? SubjectSelector { get; set; }

    /// <summary>Turns a payload into bytes. Not needed for <c>byte[]</c>, <c>ReadOnlyMemory&lt;byte&gt;</c> and
    /// <c>string</c> (UTF-8); for other types use <see cref="NatsJetStreamDestination.Json{T}(JsonTypeInfo{T})"/>.</summary>
    public Func<T, ReadOnlyMemory<byte>>? Serializer { get; set; }

    /// <summary>How the <c>Nats-Msg-Id</c> is chosen; default <see cref="NatsMsgIdMode.SourceSequence"/>.</summary>
    public NatsMsgIdMode MsgId { get; set; } = NatsMsgIdMode.SourceSequence;

    /// <summary>PubAcks awaited at once at most, across concurrent flushes; default 256.</summary>
    public int MaxOutstandingPubAcks { get; set; } = 256;

    /// <summary>How long to wait for each PubAck; default 5 s. A timeout fails the batch (retried, then its messages nacked).</summary>
    public TimeSpan PubAckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Batch size, age, retries and error handling of the underlying <see cref="BatchingDestination{T}"/>.
    /// <see cref="BatchingOptions{T}.PipelineName"/> can stay unset: the destination passes the name of the pipeline it is
    /// given to on to its batching.</summary>
    public BatchingOptions<T> Batching { get; set; } = new();

    /// <summary>Every problem, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (SubjectSelector is null && string.IsNullOrWhiteSpace(Subject))
        {
            errors.Add($"{nameof(Subject)}: set a subject (template) or a {nameof(SubjectSelector)}.");
        }
        else if (SubjectSelector is null)
        {
            try
            {
                NatsSubjectTemplate.Parse(Subject!);
            }
            catch (FormatException ex)
            {
                errors.Add($"{nameof(Subject)}: {ex.Message}");
            }
        }

        if (Serializer is null && typeof(T) != typeof(byte[]) && typeof(T) != typeof(string) && typeof(T) != typeof(ReadOnlyMemory<byte>))
        {
            errors.Add($"{nameof(Serializer)}: required for payload type {typeof(T).Name} (e.g. NatsJetStreamDestination.Json(MyContext.Default.{typeof(T).Name})).");
        }

        if (MaxOutstandingPubAcks < 1)
        {
            errors.Add($"{nameof(MaxOutstandingPubAcks)}: must be at least 1 (was {MaxOutstandingPubAcks}).");
        }

        if (PubAckTimeout <= TimeSpan.Zero)
        {
            errors.Add($"{nameof(PubAckTimeout)}: must be positive.");
        }

        if (Batching is null)
        {
            errors.Add($"{nameof(Batching)}: required.");
        }
        else
        {
            errors.AddRange(Batching.Validate().Select(e => $"{nameof(Batching)}.{e}"));
        }

        return errors;
    }
}

/// <summary>Helpers for <see cref="NatsJetStreamDestination{T}"/>.</summary>
public static class NatsJetStreamDestination
{
    /// <summary>A System.Text.Json serializer (source-generated metadata, trimming-safe).</summary>
    /// <typeparam name="T">The payload type.</typeparam>
    /// <param name="typeInfo">The type's JSON metadata, e.g. <c>MyContext.Default.Order</c>.</param>
    public static Func<T, ReadOnlyMemory<byte>> Json<T>(JsonTypeInfo<T> typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        return value => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);
    }
}

/// <summary>
/// Publishes to JetStream in batches and acks each source message only once the stream confirmed (PubAck) every one
/// of its outputs.
/// </summary>
/// <typeparam name="T">The payload type.</typeparam>
/// <remarks>
/// <para>Built on <see cref="BatchingDestination{T}"/>: each batch is published pipelined, with at most
/// <see cref="NatsJetStreamDestinationOptions{T}.MaxOutstandingPubAcks"/> PubAcks awaited at once. The batch succeeds
/// only when every PubAck arrived; an error PubAck, a timeout or no stream capturing the subject fails it, and the
/// batching sink retries it, then applies its <see cref="BatchingOptions{T}.OnError"/> (by default the run stops and the
/// messages are nacked).</para>
/// <para><b>De-duplication.</b> Each message carries <c>Nats-Msg-Id</c> = <c>&lt;source stream&gt;:&lt;stream
/// sequence&gt;:&lt;output path&gt;</c> (or its key, see <see cref="NatsMsgIdMode"/>): a source message redelivered after
/// a crash publishes the same ids and the target stream drops the copies (counted in <see cref="Duplicates"/> and
/// <c>nats.jetstream.duplicates</c>), while the outputs of one fan-out get distinct paths
/// (<see cref="MessageAttributeKeys.OutputPath"/>) and never collide. The protection lasts only the target stream's
/// duplicate window (<c>duplicate_window</c>, 2 min by default): a redelivery later than that is stored again.</para>
/// </remarks>
public sealed class NatsJetStreamDestination<T> : IDestination<T>, ISegmentDestination<T>, IPipelineMember, IAsyncDisposable
{
    private readonly NatsConnection _connection;
    private readonly bool _ownsConnection;
    private readonly JetStreamContext _js;
    private readonly NatsJetStreamDestinationOptions<T> _options;
    private readonly NatsSubjectTemplate? _template;
    private readonly Func<T, ReadOnlyMemory<byte>> _serialize;
    private readonly SemaphoreSlim _window;
    private readonly BatchingDestination<T> _batching;
    private long _published;
    private long _duplicates;
    private int _awaiting;
    private int _peakAwaiting;

    private NatsJetStreamDestination(NatsConnection connection, bool ownsConnection, NatsJetStreamDestinationOptions<T> options, ILoggerFactory? loggerFactory)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
        _js = new JetStreamContext(connection);
        _options = options;
        _template = options.SubjectSelector is null ? NatsSubjectTemplate.Parse(options.Subject!) : null;
        _serialize = options.Serializer ?? PayloadSerializer.Default<T>();
        _window = new SemaphoreSlim(options.MaxOutstandingPubAcks);
        _batching = new BatchingDestination<T>(PublishBatchAsync, options.Batching, connection.TimeProvider, loggerFactory);
    }

    /// <summary>Messages the target stream stored (non-duplicate PubAcks).</summary>
    public long Published => Interlocked.Read(ref _published);

    /// <summary>PubAcks marked duplicate: the stream already held a message with that id (a redelivery's copy).</summary>
    public long Duplicates => Interlocked.Read(ref _duplicates);

    /// <summary>Publishes sent whose PubAck is awaited now (for tests and diagnostics).</summary>
    internal int AwaitingPubAcks => Volatile.Read(ref _awaiting);

    /// <summary>The most publishes ever awaiting their PubAck at once (for tests and diagnostics).</summary>
    internal int PeakAwaitingPubAcks => Volatile.Read(ref _peakAwaiting);

    /// <summary>Connects and creates the destination; it owns the connection and closes it on dispose.</summary>
    /// <param name="connection">How to reach NATS.</param>
    /// <param name="options">Subject, serializer, ids and batching.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <param name="timeProvider">The clock for batching and timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels connecting.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    public static async Task<NatsJetStreamDestination<T>> ConnectAsync(
        NatsConnectionOptions connection,
        NatsJetStreamDestinationOptions<T> options,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ThrowIfInvalid(options);
        return await OwnedConnection.OpenAsync(
            connection,
            loggerFactory,
            timeProvider,
            (nats, _) => Task.FromResult(new NatsJetStreamDestination<T>(nats, ownsConnection: true, options, loggerFactory)),
            cancellationToken).ConfigureAwait(false);
    }

    internal static NatsJetStreamDestination<T> Create(NatsConnection connection, NatsJetStreamDestinationOptions<T> options, ILoggerFactory? loggerFactory = null)
    {
        ThrowIfInvalid(options);
        return new NatsJetStreamDestination<T>(connection, ownsConnection: false, options, loggerFactory);
    }

    /// <inheritdoc/>
    public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
    {
        if (messages.Count > 1)
        {
            // Several outputs sharing one token: give each its own path, as the pipeline does for fan-out children.
            var stamped = new Message<T>[messages.Count];
            for (var i = 0; i < stamped.Length; i++)
            {
                var m = messages[i];
                var index = i.ToString(CultureInfo.InvariantCulture);
                var path = m.Attributes.TryGet(MessageAttributeKeys.OutputPath, out var parent) ? parent + "." + index : index;
                stamped[i] = m with { Attributes = m.Attributes.With(MessageAttributeKeys.OutputPath, path) };
            }

            messages = stamped;
        }

        return _batching.SendAsync(ack, messages, cancellationToken);
    }

    // A segment holds one message per token, and SendAsync only forwards a single message (it stamps output paths only
    // when several messages share a token): forwarding the segment to the batching sink is the same, in one pass under
    // its gate, and lets the pipeline run its unordered stages to completion into this destination.
    ValueTask ISegmentDestination<T>.SendSegmentAsync(Envelope<T>[] items, int count, CancellationToken cancellationToken)
        => ((ISegmentDestination<T>)_batching).SendSegmentAsync(items, count, cancellationToken);

    // Given to a pipeline: the batching sink's metrics then carry its name (unless Batching.PipelineName set one).
    void IPipelineMember.JoinPipeline(string pipeline) => ((IPipelineMember)_batching).JoinPipeline(pipeline);

    TimeSpan IPipelineMember.LongestHold => ((IPipelineMember)_batching).LongestHold;

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

        _window.Dispose();
    }

    /// <summary>The <c>Nats-Msg-Id</c> this destination sets for <paramref name="message"/>, or <see langword="null"/>.</summary>
    /// <param name="message">The message.</param>
    public string? MsgIdFor(in Message<T> message) => _options.MsgId switch
    {
        NatsMsgIdMode.Key => message.Key,
        NatsMsgIdMode.SourceSequence when message.Attributes.TryGet(MessageAttributeKeys.StreamSequence, out var seq) =>
            string.Create(CultureInfo.InvariantCulture,
                $"{message.Attributes.GetOrDefault(MessageAttributeKeys.Stream, string.Empty)}:{seq}:{message.Attributes.GetOrDefault(MessageAttributeKeys.OutputPath, "0")}"),
        _ => null,
    };

    private async ValueTask PublishBatchAsync(IReadOnlyList<Message<T>> messages, CancellationToken cancellationToken)
    {
        var pending = new List<Task>(messages.Count);
        try
        {
            foreach (var message in messages)
            {
                await _window.WaitAsync(cancellationToken).ConfigureAwait(false);
                pending.Add(PublishOneAsync(message, cancellationToken));
            }
        }
        finally
        {
            // Every publish started is awaited (and releases its window slot) even when starting the rest failed.
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
    }

    private async Task PublishOneAsync(Message<T> message, CancellationToken cancellationToken)
    {
        HighWaterMark.Raise(ref _peakAwaiting, Interlocked.Increment(ref _awaiting));

        try
        {
            var subject = _options.SubjectSelector?.Invoke(message) ?? _template!.Render(message);
            var payload = _serialize(message.Value);
            var id = MsgIdFor(message);
            var headers = id is null ? null : new NatsHeaders();
            headers?.Set("Nats-Msg-Id", id!);
            var ack = await _js.PublishAsync(subject, payload, headers, new JetStreamPublishOptions { Timeout = _options.PubAckTimeout }, cancellationToken).ConfigureAwait(false);
            if (ack.Duplicate)
            {
                Interlocked.Increment(ref _duplicates);
                NatsPipelineTelemetry.Duplicates.Add(1, new KeyValuePair<string, object?>("nats.stream", ack.Stream));
            }
            else
            {
                Interlocked.Increment(ref _published);
                NatsPipelineTelemetry.Published.Add(1, new KeyValuePair<string, object?>("nats.stream", ack.Stream));
            }
        }
        finally
        {
            Interlocked.Decrement(ref _awaiting);
            _window.Release();
        }
    }

    private static void ThrowIfInvalid(NatsJetStreamDestinationOptions<T> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid NatsJetStreamDestinationOptions: " + string.Join(" ", errors), nameof(options));
        }
    }
}
