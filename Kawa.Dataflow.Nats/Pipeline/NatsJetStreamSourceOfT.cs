using Kawa.Dataflow.Nats.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>What <see cref="NatsJetStreamSource{T}"/> does with a payload its codec cannot decode.</summary>
public enum NatsDecodeFailure
{
    /// <summary>Send <c>+TERM</c> (a payload that does not decode now never will), log the subject, stream sequence and
    /// reason (never the payload), count it, and go on with the next message. The default.</summary>
    Terminate,

    /// <summary>Send <c>-NAK</c> so the message comes back (for a decoder that is about to be fixed), then stop the
    /// pipeline: the source throws a <see cref="FormatException"/>, surfaced as stage <c>source</c>.</summary>
    Fatal,
}

/// <summary>
/// A durable JetStream pull consumer whose payloads are decoded by a <see cref="NatsPayloadCodec{T}"/>: raw bytes,
/// UTF-8 strings, System.Text.Json (source-generated contexts supported) or your own.
/// </summary>
/// <typeparam name="T">The decoded payload type.</typeparam>
/// <remarks>
/// <para>Everything <see cref="NatsJetStreamSource"/> documents holds here: acks, automatic <c>+WPI</c>, drain mode,
/// attributes, start-up checks. This type only adds decoding, done on the pump's thread as each message is received.</para>
/// <para><b>Undecodable payloads</b> follow <see cref="NatsJetStreamSourceOptions.DecodeFailure"/> and never reach a
/// handler. To dead-letter them with the raw bytes instead, read a <see cref="NatsJetStreamSource"/> and decode in the
/// first handler stage (for example <c>JsonHandlers.Deserialize</c>) under <c>ErrorPolicy.DeadLetter</c>: that stage's
/// error policy then decides, and the dead letter keeps the payload.</para>
/// </remarks>
public sealed partial class NatsJetStreamSource<T> : ISource<T>, IAsyncDisposable, IPipelineSourceMember
{
    private readonly NatsJetStreamSource _raw;
    private readonly NatsPayloadCodec<T> _codec;
    private readonly NatsDecodeFailure _onFailure;
    private readonly ILogger _logger;
    private long _decodeFailures;

    private NatsJetStreamSource(NatsJetStreamSource raw, NatsPayloadCodec<T> codec, NatsDecodeFailure onFailure, ILogger logger)
    {
        _raw = raw;
        _codec = codec;
        _onFailure = onFailure;
        _logger = logger;
    }

    /// <summary>The consumer's ack wait as the server reports it.</summary>
    public TimeSpan AckWait => _raw.AckWait;

    /// <summary>The consumer's <c>max_ack_pending</c> as the server reports it (-1 or 0: no limit).</summary>
    public long MaxAckPending => _raw.MaxAckPending;

    /// <summary>Messages handed out whose final outcome is not given yet.</summary>
    public int Outstanding => _raw.Outstanding;

    /// <summary>Messages requested ahead of the pipeline; see <see cref="NatsJetStreamSource.PrefetchMessages"/>.</summary>
    public int PrefetchMessages => _raw.PrefetchMessages;

    /// <summary>The byte budget of each pull; see <see cref="NatsJetStreamSource.PrefetchBytes"/>.</summary>
    public long PrefetchBytes => _raw.PrefetchBytes;

    /// <summary>Payloads that did not decode (terminated or fatal).</summary>
    public long DecodeFailures => Interlocked.Read(ref _decodeFailures);

    /// <summary>Connects, creates or binds the consumer and starts pulling.</summary>
    /// <param name="connection">How to reach NATS; the source owns this connection and closes it on dispose.</param>
    /// <param name="options">The consumer and how to read it.</param>
    /// <param name="codec">How payloads become <typeparamref name="T"/> (see <see cref="NatsPayloadCodec"/>).</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <param name="timeProvider">The clock for keep-alives and timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    /// <exception cref="NotSupportedException">Several filter subjects on a server older than 2.10.</exception>
    /// <exception cref="JetStreamApiException">The stream or consumer is missing, or the server refused the consumer.</exception>
    public static async Task<NatsJetStreamSource<T>> StartAsync(
        NatsConnectionOptions connection,
        NatsJetStreamSourceOptions options,
        NatsPayloadCodec<T> codec,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(codec);
        var raw = await NatsJetStreamSource.StartAsync(connection, options, loggerFactory, timeProvider, cancellationToken).ConfigureAwait(false);
        return new NatsJetStreamSource<T>(raw, codec, options.DecodeFailure, (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NatsJetStreamSource<T>>());
    }

    internal static async Task<NatsJetStreamSource<T>> StartAsync(NatsConnection connection, bool ownsConnection, NatsJetStreamSourceOptions options, NatsPayloadCodec<T> codec, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(codec);
        var raw = await NatsJetStreamSource.StartAsync(connection, ownsConnection, options, cancellationToken).ConfigureAwait(false);
        return new NatsJetStreamSource<T>(raw, codec, options.DecodeFailure, connection.Logger);
    }

    /// <summary>Start-up check against the pipeline; see <see cref="NatsJetStreamSource.ValidateAgainst"/>.</summary>
    /// <param name="pipeline">The built pipeline reading this source.</param>
    /// <param name="longestSinkHold">The longest a destination holds a message before acking.</param>
    /// <exception cref="InvalidOperationException">A limit does not fit; the message names both figures.</exception>
    public void ValidateAgainst(Kawa.Dataflow.Pipeline pipeline, TimeSpan longestSinkHold = default) => _raw.ValidateAgainst(pipeline, longestSinkHold);

    /// <inheritdoc/>
    public async ValueTask<Delivery<T>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var delivery = await _raw.ReceiveAsync(cancellationToken).ConfigureAwait(false);
            if (delivery.IsEndOfStream)
            {
                return Delivery<T>.EndOfStream;
            }

            if (delivery.IsIdle)
            {
                return Delivery<T>.Idle;
            }

            var message = delivery.Message;
            T value;
            try
            {
                value = _codec.Decode(message.Value);
            }
            catch (FormatException ex)
            {
                Interlocked.Increment(ref _decodeFailures);
                var subject = message.Topic ?? string.Empty;
                var sequence = message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence);
                if (_onFailure == NatsDecodeFailure.Fatal)
                {
                    delivery.Ack.Nack();
                    throw new FormatException($"Message {sequence} on '{subject}' did not decode with codec '{_codec.Name}': {ex.Message}", ex);
                }

                LogTerminated(_logger, sequence, subject, _codec.Name, ex.Message);
                delivery.Ack.Terminate();
                continue;
            }

            return new Delivery<T>(new Message<T>(value, message.Key, message.Topic, message.Attributes), delivery.Ack);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => _raw.DisposeAsync();

    void IPipelineSourceMember.JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes, TimeSpan longestHold)
        => ((IPipelineSourceMember)_raw).JoinPipeline(pipeline, maxInFlightMessages, maxInFlightBytes, longestHold);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Terminated message {Sequence} on '{Subject}': its payload did not decode with codec '{Codec}': {Reason}")]
    private static partial void LogTerminated(ILogger logger, ulong sequence, string subject, string codec, string reason);
}
