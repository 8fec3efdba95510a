using System.Globalization;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.Pipeline;

/// <summary>
/// Reads a durable JetStream PULL consumer as raw payload bytes: at-least-once, one ack token per delivery.
/// </summary>
/// <remarks>
/// <para><b>Acks.</b> <see cref="AckToken.Ack"/> sends <c>+ACK</c>, <see cref="AckToken.Nack"/> <c>-NAK</c> (with
/// <c>{"delay": ns}</c> when a delay is given), <see cref="AckToken.Terminate"/> <c>+TERM</c>, and
/// <see cref="AckToken.InProgress"/> <c>+WPI</c>. Outcomes are queued and sent in the background, never blocking the
/// caller; an ack lost with the connection means the server redelivers after the ack wait (a duplicate, never a loss).</para>
/// <para><b>Automatic keep-alive.</b> One timer scans the messages handed out and sends <c>+WPI</c> for each that has
/// waited for its outcome longer than <see cref="NatsJetStreamSourceOptions.AutoInProgressFraction"/> of the ack wait,
/// so a slow handler or a sink holding rows for a commit does not cause a redelivery. A keep-alive asked for through a
/// token (<see cref="AckToken.InProgress"/>, for example by a sink holding the message, or by each output of a handler
/// that fanned it out) is sent only if the message's ack wait was not reset, by its delivery or an earlier <c>+WPI</c>,
/// within the last tenth of the ack wait; otherwise it is coalesced (<see cref="InProgressCoalesced"/>): one
/// <c>+WPI</c> then does the work of many, and the ack wait can still not run out.</para>
/// <para><b>Decoding.</b> The payload is handed on as bytes. Decode in a handler (for example
/// <c>JsonHandlers.Deserialize(MyContext.Default.MyType)</c>) so a payload that does not decode goes through that
/// stage's error policy (dead-letter, terminate, ...) instead of stopping the source.</para>
/// <para><b>Poison messages.</b> With <see cref="NatsJetStreamSourceOptions.MaxDeliver"/> set, the last allowed
/// delivery carries <see cref="NatsAttributeKeys.LastDelivery"/>; the message's delivery count is in
/// <see cref="MessageAttributeKeys.DeliveryCount"/>.</para>
/// <para><b>Drain mode</b> (<see cref="NatsJetStreamSourceOptions.StopAtEnd"/>), for batch jobs: the stream's last
/// sequence is recorded at start, and only messages up to it are consumed.</para>
/// <list type="bullet">
/// <item>A message with a higher stream sequence (published after the start) is not handed out nor counted: it is
/// given back at once with <c>-NAK</c> and a delay of the consumer's ack wait, so the server does not hand it straight
/// back to this run's open pull request (which would loop, and with a <c>max_deliver</c> could use up its deliveries).
/// Another process sharing the consumer, or the next run, gets it after that delay.</item>
/// <item>Once every message up to the start sequence has been delivered and the source waits only for outcomes, it
/// returns <see cref="Delivery{T}.Idle"/> (once per idle period), so the pipeline's sink commits what it holds (a
/// Parquet file that would otherwise wait for its roll age).</item>
/// <item>It returns <see cref="Delivery{T}.EndOfStream"/> once every token it handed out has its final outcome and the
/// consumer has nothing up to the start sequence awaiting an ack (its ack floor reached the start sequence, or nothing
/// is pending at all): messages nacked with a delay, and messages another process or a crashed run held, are waited
/// for, redelivered and read again before the run ends.</item>
/// </list>
/// <para>Dispose after the pipeline ended: outcomes already given are sent, buffered (prefetched) messages are not
/// acked and are redelivered after the ack wait.</para>
/// </remarks>
public sealed class NatsJetStreamSource : ISource<byte[]>, IAsyncDisposable, IPipelineSourceMember
{
    /// <summary>The pull window outside a pipeline, and its cap inside one, when
    /// <see cref="NatsJetStreamSourceOptions.PrefetchMessages"/> is unset.</summary>
    internal const int DefaultPrefetchMessages = 256;

    private readonly NatsConnection _connection;
    private readonly bool _ownsConnection;
    private readonly NatsJetStreamSourceOptions _options;
    private readonly NatsPullConsumer _consumer;
    private readonly JetStreamContext _js;
    private readonly TimeProvider _time;
    private readonly OutstandingTokens _outstanding = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ITimer? _keepAlive;
    private readonly long _maxDeliver;
    private readonly TimeSpan _keepAliveAfter;
    private readonly TimeSpan _keepAliveSpacing;
    private readonly SemaphoreSlim _settled = new(0);
    private readonly ulong _endSequence;
    private Task<JetStreamMsg>? _next;
    private bool _ended;
    private bool _tailReached;
    private bool _idleSent;
    private long _lastCheck;
    private long _beyondEnd;
    private long _inProgressSent;
    private long _inProgressCoalesced;

    private NatsJetStreamSource(NatsConnection connection, bool ownsConnection, JetStreamContext js, NatsJetStreamSourceOptions options, ConsumerInfo info, NatsPullConsumer consumer, ulong endSequence)
    {
        _endSequence = endSequence;
        _connection = connection;
        _ownsConnection = ownsConnection;
        _js = js;
        _options = options;
        _consumer = consumer;
        _time = connection.TimeProvider;
        var config = info.Config ?? new ConsumerConfig();
        AckWait = config.AckWait > TimeSpan.Zero ? config.AckWait : TimeSpan.FromSeconds(30);
        _keepAliveSpacing = AckWait / 10;
        MaxAckPending = config.MaxAckPending;
        _maxDeliver = config.MaxDeliver;
        if (options.AutoInProgressFraction > 0)
        {
            _keepAliveAfter = AckWait * options.AutoInProgressFraction;
            var tick = _keepAliveAfter / 2;
            _keepAlive = _time.CreateTimer(static s => ((NatsJetStreamSource)s!).KeepAlive(), this, tick, tick);
        }
    }

    /// <summary>The consumer's ack wait as the server reports it.</summary>
    public TimeSpan AckWait { get; }

    /// <summary>The consumer's <c>max_ack_pending</c> as the server reports it (-1 or 0: no limit).</summary>
    public long MaxAckPending { get; }

    /// <summary>Messages handed out whose final outcome is not given yet.</summary>
    public int Outstanding => _outstanding.Count;

    /// <summary>The pull consumer underneath (tests read its pull and recovery counters).</summary>
    internal NatsPullConsumer PullConsumer => _consumer;

    /// <summary>
    /// Messages requested from the server ahead of the pipeline (the pull batch) from now on:
    /// <see cref="NatsJetStreamSourceOptions.PrefetchMessages"/> when set; otherwise 256, or the smaller of 256 and the
    /// <c>MaxInFlightMessages</c> of the pipeline this source was given to.
    /// </summary>
    public int PrefetchMessages => _consumer.BatchSize;

    /// <summary>
    /// The byte budget of each pull from now on (0: none): <see cref="NatsJetStreamSourceOptions.PrefetchBytes"/> when
    /// set; otherwise none, or, inside a pipeline whose <c>MaxInFlightBytes</c> a full pull could pass, that limit (but
    /// never below twice the server's <c>max_payload</c>).
    /// </summary>
    public long PrefetchBytes => _consumer.MaxBytes;

    /// <summary>In drain mode, the stream's last sequence at start: the last message this source consumes. 0 otherwise.</summary>
    public ulong EndSequence => _endSequence;

    /// <summary>In drain mode, deliveries of messages published after the start that were given back (<c>-NAK</c>).</summary>
    public long BeyondEndReturned => Interlocked.Read(ref _beyondEnd);

    /// <summary><c>+WPI</c> keep-alives sent so far: automatic ones and those asked for through tokens.</summary>
        public long InProgressSent => Interlocked.Read(ref _inProgressSent);

    /// <summary>
    /// Keep-alives asked for through a token and not sent, because the message's ack wait had been reset (by its
    /// delivery or a <c>+WPI</c>) within the last tenth of it.
    /// </summary>
    public long InProgressCoalesced => Interlocked.Read(ref _inProgressCoalesced);

    /// <summary>Connects, creates or binds the consumer and starts pulling.</summary>
    /// <param name="connection">How to reach NATS; the source owns this connection and closes it on dispose.</param>
    /// <param name="options">The consumer and how to read it.</param>
    /// <param name="loggerFactory">Where to log; nothing by default.</param>
    /// <param name="timeProvider">The clock for keep-alives and timeouts; <see cref="TimeProvider.System"/> by default.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <exception cref="ArgumentException"><paramref name="options"/> is invalid (every problem is listed).</exception>
    /// <exception cref="NotSupportedException">Several filter subjects on a server older than 2.10.</exception>
    /// <exception cref="JetStreamApiException">The stream or consumer is missing, or the server refused the consumer (an
    /// existing durable whose configuration the options would change in a way the server does not allow: the message
    /// says so and what to do).</exception>
    public static async Task<NatsJetStreamSource> StartAsync(
        NatsConnectionOptions connection,
        NatsJetStreamSourceOptions options,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? timeProvider = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ThrowIfInvalid(options);
        var nats = new NatsConnection(connection, loggerFactory, timeProvider);
        try
        {
            await nats.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return await StartAsync(nats, ownsConnection: true, options, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await nats.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    internal static async Task<NatsJetStreamSource> StartAsync(NatsConnection connection, bool ownsConnection, NatsJetStreamSourceOptions options, CancellationToken cancellationToken = default)
    {
        ThrowIfInvalid(options);
        var js = new JetStreamContext(connection);
        ConsumerInfo info;
        if (options.CreateOrUpdate)
        {
            if (options.FilterSubjects.Count > 1 && !SupportsMultipleFilters(connection.ServerInfo.Version))
            {
                throw new NotSupportedException(
                    $"Consumer '{options.Durable}' asks for {options.FilterSubjects.Count} filter subjects, which needs nats-server 2.10 or later; " +
                    $"the server is {connection.ServerInfo.Version ?? "of unknown version"}. Use one filter subject (a wildcard), or one consumer per subject.");
            }

            var config = new ConsumerConfig
            {
                DurableName = options.Durable,
                AckPolicy = AckPolicy.Explicit,
                AckWait = options.AckWait,
                MaxDeliver = options.MaxDeliver,
                MaxAckPending = options.MaxAckPending,
                DeliverPolicy = options.DeliverPolicy switch
                {
                    JetStreamDeliverPolicy.New => DeliverPolicy.New,
                    JetStreamDeliverPolicy.Last => DeliverPolicy.Last,
                    JetStreamDeliverPolicy.LastPerSubject => DeliverPolicy.LastPerSubject,
                    JetStreamDeliverPolicy.ByStartSequence => DeliverPolicy.ByStartSequence,
                    JetStreamDeliverPolicy.ByStartTime => DeliverPolicy.ByStartTime,
                    _ => DeliverPolicy.All,
                },
                OptStartSeq = options.OptStartSequence ?? 0,
                OptStartTime = options.OptStartTime,
                FilterSubject = options.FilterSubjects.Count == 1 ? options.FilterSubjects[0] : null,
                FilterSubjects = options.FilterSubjects.Count > 1 ? [.. options.FilterSubjects] : null,
            };
            info = await CreateOrUpdateAsync(js, options, config, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            info = await js.GetConsumerAsync(options.Stream, options.Durable, cancellationToken).ConfigureAwait(false);
            if (info.Config is { } existing && existing.AckPolicy != AckPolicy.Explicit)
            {
                throw new NotSupportedException(
                    $"Consumer '{options.Durable}' on stream '{options.Stream}' uses ack policy '{existing.AckPolicy}'; only explicit acks are supported " +
                    "(AckAll lets one process's ack settle messages another still holds; AckNone loses messages on a crash).");
            }
        }

        // Drain mode consumes up to the stream's last sequence as of now; recorded before the first pull.
        var endSequence = options.StopAtEnd
            ? (await js.GetStreamAsync(options.Stream, cancellationToken).ConfigureAwait(false)).State?.LastSeq ?? 0
            : 0;
        // No pull before the first read or a pipeline built with this source, which sizes the window first (JoinPipeline).
        var consumer = js.CreatePullConsumer(options.Stream, options.Durable, new NatsPullConsumerOptions
        {
            BatchSize = EffectivePrefetchMessages(options.PrefetchMessages, pipelineMaxInFlightMessages: null),
            MaxBytes = options.PrefetchBytes ?? 0,
            Expires = options.PullExpires,
            IdleHeartbeat = TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(5).Ticks, options.PullExpires.Ticks / 2)),
            PullOnFirstRead = true,
        });
        await consumer.StartAsync(cancellationToken).ConfigureAwait(false);
        return new NatsJetStreamSource(connection, ownsConnection, js, options, info, consumer, endSequence);
    }

    /// <summary>
    /// Creates the consumer, or updates the durable that exists. The server updates only some settings of an existing
    /// consumer (ack wait, max deliver, max ack pending, ...); a refused change is reported as such, with what to do.
    /// </summary>
    private static async Task<ConsumerInfo> CreateOrUpdateAsync(JetStreamContext js, NatsJetStreamSourceOptions options, ConsumerConfig config, CancellationToken cancellationToken)
    {
        try
        {
            return await js.CreateConsumerAsync(options.Stream, config, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (JetStreamApiException ex) when (ex.ErrorCode is not (JetStreamContext.StreamNotFound or JetStreamContext.ConsumerNotFound))
        {
            if (!await ExistsAsync(js, options, cancellationToken).ConfigureAwait(false))
            {
                throw; // Not an update: the server refused to create the consumer.
            }

            throw new JetStreamApiException(ex,
                $"Consumer '{options.Durable}' on stream '{options.Stream}' exists with a configuration these options cannot update: {ex.Description} " +
                $"(JetStream err_code {ex.ErrorCode.ToString(CultureInfo.InvariantCulture)}). Change only what an existing consumer allows (for example AckWait, MaxDeliver, MaxAckPending), " +
                $"delete the consumer (it loses its position) or use another durable name, or set {nameof(NatsJetStreamSourceOptions.CreateOrUpdate)} = false to use it as it is.");
        }
    }

    private static async Task<bool> ExistsAsync(JetStreamContext js, NatsJetStreamSourceOptions options, CancellationToken cancellationToken)
    {
        try
        {
            await js.GetConsumerAsync(options.Stream, options.Durable, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (JetStreamApiException)
        {
            return false;
        }
    }

    /// <summary>
    /// Start-up check: throws when the pipeline could hold more messages unacked than the consumer allows, or when the
    /// sink holds messages longer than the ack wait.
    /// </summary>
    /// <param name="pipeline">The built pipeline reading this source.</param>
    /// <param name="longestSinkHold">The longest a destination holds a message before acking, when the pipeline cannot
    /// know it (a destination of your own); this library's destinations (batching, Parquet, JetStream, fan-out, router,
    /// and dead-letter destinations of the stages) report their own hold (a Parquet file's maximum age plus its batch
    /// age), and the longer of the two is checked.</param>
    /// <remarks>
    /// The most messages delivered and not acked by this process is <c>pipeline.MaxUnsettledMessages +
    /// PrefetchMessages</c> (read but unsettled, plus requested ahead), with the prefetch this pipeline gives the source
    /// (see <see cref="NatsJetStreamSourceOptions.PrefetchMessages"/>). Above the consumer's <c>max_ack_pending</c> the
    /// server, not the pipeline, becomes the limit, and several processes sharing the consumer starve each other.
    /// A hold as long as the ack wait makes the server redeliver messages the sink still holds (duplicates): raise the
    /// ack wait above the hold. Every problem is reported at once.
    /// </remarks>
    /// <exception cref="InvalidOperationException">A limit does not fit; the message names both figures.</exception>
    public void ValidateAgainst(Kawa.Dataflow.Pipeline pipeline, TimeSpan longestSinkHold = default)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        // The window this pipeline gives the source, or the one in use if larger (another build set it last).
        var prefetch = Math.Max(EffectivePrefetchMessages(_options.PrefetchMessages, pipeline.MaxUnsettledMessages), PrefetchMessages);
        var misfits = Misfits(pipeline.Name, pipeline.MaxUnsettledMessages, prefetch, PipelineMember.Max(longestSinkHold, pipeline.LongestDestinationHold));
        if (misfits.Length > 0)
        {
            throw new InvalidOperationException("The JetStream source does not fit the pipeline: " + string.Join(" ", misfits));
        }
    }

    /// <summary>Every start-up rule a pipeline with these figures breaks, each as its message (none when it fits).</summary>
    private string[] Misfits(string pipeline, int maxUnsettledMessages, int prefetch, TimeSpan longestHold)
        => [.. new[] { MaxAckPendingMisfit(pipeline, maxUnsettledMessages, prefetch), AckWaitMisfit(longestHold) }.OfType<string>()];

    /// <summary>The start-up check's second rule: null when a sink holding messages up to <paramref name="longestHold"/>
    /// fits the consumer's ack wait, else why not.</summary>
    private string? AckWaitMisfit(TimeSpan longestHold) => longestHold >= AckWait
        ? string.Create(CultureInfo.InvariantCulture,
            $"the sink holds messages up to {longestHold} before acking, not less than consumer '{_options.Durable}''s ack wait {AckWait}: the server would redeliver them. Raise AckWait above the hold.")
        : null;

    /// <summary>
    /// The rule <see cref="ValidateAgainst"/> checks, for callers that know the figures before anything connects (the
    /// <c>kawa</c> daemon's configuration check): the most messages one process holds delivered and not acked is the
    /// pipeline's <c>MaxUnsettledMessages</c> plus the effective prefetch (<see cref="EffectivePrefetchMessages"/>).
    /// </summary>
    internal static long MostUnacked(int maxUnsettledMessages, int prefetchMessages) => (long)maxUnsettledMessages + prefetchMessages;

    /// <summary>The pull batch: the configured prefetch when set; otherwise <see cref="DefaultPrefetchMessages"/>,
    /// capped by the pipeline's message limit when the source is in one.</summary>
    internal static int EffectivePrefetchMessages(int? configured, int? pipelineMaxInFlightMessages)
        => configured ?? Math.Min(DefaultPrefetchMessages, pipelineMaxInFlightMessages ?? DefaultPrefetchMessages);

    /// <summary>The pull byte budget: the configured one when set (0: none); otherwise none outside a pipeline, and
    /// inside one its byte limit when a full batch of the largest messages the server allows could pass it (none
    /// otherwise), but at least twice the server's <c>max_payload</c> so that any message fits a pull (a pull cannot
    /// deliver a message larger than its budget, while the pipeline always admits one message).</summary>
    internal static long EffectivePrefetchBytes(long? configured, int batch, long? pipelineMaxInFlightBytes, long serverMaxPayload)
    {
        if (configured is { } bytes)
        {
            return bytes;
        }

        if (pipelineMaxInFlightBytes is not { } limit || limit / batch >= serverMaxPayload)
        {
            return 0;
        }

        return Math.Max(limit, 2 * Math.Max(serverMaxPayload, 1));
    }

    /// <summary>
    /// Sizes the pull window to the pipeline reading this source, unless the options set it, and runs the start-up
    /// checks of <see cref="ValidateAgainst"/> (<c>max_ack_pending</c>, and the longest hold of this library's
    /// destinations against the ack wait), so that building the pipeline fails with their messages instead of the
    /// consumer starving or redelivering at run time.
    /// </summary>
    void IPipelineSourceMember.JoinPipeline(string pipeline, int maxInFlightMessages, long maxInFlightBytes, TimeSpan longestHold)
    {
        var batch = EffectivePrefetchMessages(_options.PrefetchMessages, maxInFlightMessages);
        var misfits = Misfits(pipeline, maxInFlightMessages, batch, longestHold);
        if (misfits.Length > 0)
        {
            throw new InvalidOperationException($"JetStream source for stream '{_options.Stream}': {string.Join(" ", misfits)}");
        }

        _consumer.Resize(batch, EffectivePrefetchBytes(_options.PrefetchBytes, batch, maxInFlightBytes, _connection.ServerInfo.MaxPayload));
    }

    /// <summary>The start-up check's first rule: null when a pipeline holding <paramref name="maxUnsettledMessages"/>
    /// with a pull window of <paramref name="prefetch"/> fits the consumer's <c>max_ack_pending</c>, else why not.</summary>
    private string? MaxAckPendingMisfit(string pipeline, int maxUnsettledMessages, int prefetch)
    {
        var most = MostUnacked(maxUnsettledMessages, prefetch);
        return ExceedsMaxAckPending(most, MaxAckPending)
            ? string.Create(CultureInfo.InvariantCulture,
                $"pipeline '{pipeline}' can hold {most} messages unacked (MaxUnsettledMessages {maxUnsettledMessages} + PrefetchMessages {prefetch}) but consumer '{_options.Durable}' allows max_ack_pending {MaxAckPending}: raise MaxAckPending or lower the pipeline's MaxInFlightMessages.")
            : null;
    }

    /// <summary>Whether <paramref name="mostUnacked"/> passes a consumer's <c>max_ack_pending</c> (-1 or 0: no limit).</summary>
    internal static bool ExceedsMaxAckPending(long mostUnacked, long maxAckPending) => maxAckPending > 0 && mostUnacked > maxAckPending;

    /// <summary>Asks the server how far behind the consumer is (one <c>$JS.API.CONSUMER.INFO</c> request).</summary>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <returns>The consumer's figures across every process sharing it.</returns>
    /// <exception cref="JetStreamApiException">The consumer is gone.</exception>
    /// <exception cref="NatsTimeoutException">The server did not answer in time.</exception>
    public async ValueTask<NatsConsumerLag> GetLagAsync(CancellationToken cancellationToken = default)
    {
        var info = await _js.GetConsumerAsync(_options.Stream, _options.Durable, cancellationToken).ConfigureAwait(false);
        return new NatsConsumerLag((long)Math.Min(info.NumPending, long.MaxValue), info.NumAckPending, info.NumRedelivered);
    }

    /// <inheritdoc/>
    public async ValueTask<Delivery<byte[]>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (_ended)
        {
            return Delivery<byte[]>.EndOfStream;
        }

        if (!_options.StopAtEnd)
        {
            var msg = await _consumer.NextAsync(cancellationToken).ConfigureAwait(false);
            return Deliver(msg);
        }

        return await ReceiveDrainingAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Drain mode: messages up to the start sequence, Idle while only outcomes are awaited, then the end.</summary>
    private async ValueTask<Delivery<byte[]>> ReceiveDrainingAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            // One pending read, kept across calls: cancelling a caller's wait never drops a message. A message already
            // buffered is taken at once, without a Task per message.
            JetStreamMsg? ready = null;
            if (_next is null)
            {
                var pending = _consumer.NextAsync(_stop.Token);
                if (pending.IsCompletedSuccessfully)
                {
                    ready = pending.Result;
                }
                else
                {
                    _next = pending.AsTask();
                }
            }

            if (ready is not null || _next!.IsCompleted)
            {
                var msg = ready;
                if (msg is null)
                {
                    var next = _next!;
                    _next = null;
                    msg = await next.ConfigureAwait(false);
                }

                if (msg.Metadata.StreamSequence > _endSequence)
                {
                    // Published after the start: first deliveries come in stream order, so everything up to the start
                    // sequence has been delivered at least once. Not ours to process: give it back, uncounted.
                    _tailReached = true;
                    GiveBack(msg);
                    continue;
                }

                _idleSent = false;
                return Deliver(msg);
            }

            // Ask the server only when it can change the answer: the end needs nothing outstanding here, and Idle
            // needs to know everything up to the start sequence was delivered.
            if (_outstanding.IsEmpty || (!_tailReached && _time.GetElapsedTime(_lastCheck) >= _options.DrainCheckInterval))
            {
                if (await IsDrainedAsync(cancellationToken).ConfigureAwait(false) && _outstanding.IsEmpty && !_next.IsCompleted)
                {
                    _ended = true;
                    await _stop.CancelAsync().ConfigureAwait(false);
                    GiveBackLate(_next);
                    return Delivery<byte[]>.EndOfStream;
                }
            }

            if (_tailReached && !_outstanding.IsEmpty && !_idleSent && !_next.IsCompleted)
            {
                // Nothing more to read; the sink may hold the rest until a size or age limit: let it commit now.
                _idleSent = true;
                return Delivery<byte[]>.Idle;
            }

            // Wake on a message, on a settlement (which may finish the drain), or after the check interval.
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            var settled = _settled.WaitAsync(wait.Token);
            var tick = Task.Delay(_options.DrainCheckInterval, _time, wait.Token);
            try
            {
                await Task.WhenAny(_next, settled, tick).WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // Withdraw the semaphore waiter and the timer: a stale waiter would swallow a later settlement signal.
                await wait.CancelAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>A message beyond the start sequence: <c>-NAK</c> with the ack wait as delay, so this run's open pull
    /// does not get it straight back (see the class remarks).</summary>
    private void GiveBack(JetStreamMsg msg)
    {
        _consumer.EnqueueAck(msg, AckKind.Nack, AckWait);
        Interlocked.Increment(ref _beyondEnd);
    }

    /// <summary>A read that completed as the drain ended: only a message beyond the start sequence can arrive then.</summary>
    private void GiveBackLate(Task<JetStreamMsg> next)
    {
        if (next.IsCompletedSuccessfully)
        {
            GiveBack(next.Result);
        }
        else
        {
            _ = next.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_keepAlive is not null)
        {
            await _keepAlive.DisposeAsync().ConfigureAwait(false);
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _consumer.DisposeAsync().ConfigureAwait(false);
        if (_ownsConnection)
        {
            await _connection.DisposeAsync().ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    /// <summary>
    /// Asks the consumer's state. Records whether everything up to the start sequence has been delivered at least once
    /// (the consumer delivered past it, or has nothing undelivered), and returns whether nothing up to it still awaits
    /// an outcome anywhere (the ack floor reached it, or nothing is pending at all).
    /// </summary>
    private async Task<bool> IsDrainedAsync(CancellationToken cancellationToken)
    {
        _lastCheck = _time.GetTimestamp();
        ConsumerInfo info;
        try
        {
            info = await _js.GetConsumerAsync(_options.Stream, _options.Durable, cancellationToken).ConfigureAwait(false);
        }
        catch (NatsTimeoutException)
        {
            return false; // A slow or reconnecting server: look again at the next check, do not fail the run.
        }

        var delivered = info.Delivered?.StreamSeq ?? 0;
        if (delivered >= _endSequence || info.NumPending == 0)
        {
            _tailReached = true;
        }

        var settled = info.NumAckPending == 0 || (info.AckFloor?.StreamSeq ?? 0) >= _endSequence;
        return _tailReached && settled && _outstanding.IsEmpty;
    }

    private Delivery<byte[]> Deliver(JetStreamMsg msg)
    {
        var meta = msg.Metadata;
        var attributes = new JetStreamAttributes(msg.Subject, meta, _time.GetUtcNow(), msg.Data.Length, _maxDeliver > 0 && meta.NumDelivered >= _maxDeliver, msg.Headers);
        var token = new SourceAckToken(this, msg.ReplyToBytes, _time.GetTimestamp());
        _outstanding.Add(token);
        var delivery = new Delivery<byte[]>(new Message<byte[]>(msg.Data, Topic: msg.Subject, Attributes: MessageAttributes.FromProvider(attributes)), token);
        // The token keeps only the reply subject until the outcome; the payload, the parsed metadata and the message
        // itself are the pipeline's from here on, and die with it rather than live on until the file holding it commits.
        msg.ReleasePayload();
        return delivery;
    }

    private void OnSettled(SourceAckToken token, AckOutcome outcome)
    {
        _consumer.EnqueueAck(token.ReplyTo, outcome.Kind, outcome.Delay);
        _outstanding.Remove(token);
        if (_settled.CurrentCount == 0)
        {
            _settled.Release();
        }
    }

    // One scan for every outstanding message, not a timer per message.
    private void KeepAlive()
    {
        var now = _time.GetTimestamp();
        foreach (var token in _outstanding.Snapshot())
        {
            if (!token.IsCompleted && _time.GetElapsedTime(Volatile.Read(ref token.LastTouched), now) >= _keepAliveAfter)
            {
                Volatile.Write(ref token.LastTouched, now);
                _consumer.EnqueueAck(token.ReplyTo, kind: null, TimeSpan.Zero);
                Interlocked.Increment(ref _inProgressSent);
                NatsPipelineTelemetry.KeepAlives.Add(1);
            }
        }
    }

    // A keep-alive asked for through the token: the server's ack timer restarts at delivery and at each +WPI, so one
    // sent within the last tenth of the ack wait already keeps the message alive. Without this, a sink's keep-alive
    // sweep would double the automatic one, and a message fanned out to N held outputs would cost N +WPI a sweep.
    private void RequestInProgress(SourceAckToken token)
    {
        var now = _time.GetTimestamp();
        var last = Volatile.Read(ref token.LastTouched);
        if (_time.GetElapsedTime(last, now) < _keepAliveSpacing
            || Interlocked.CompareExchange(ref token.LastTouched, now, last) != last)
        {
            // Recent enough, or another caller is sending one right now.
            Interlocked.Increment(ref _inProgressCoalesced);
            return;
        }

        _consumer.EnqueueAck(token.ReplyTo, kind: null, TimeSpan.Zero);
        Interlocked.Increment(ref _inProgressSent);
    }

    private static bool SupportsMultipleFilters(string? version)
    {
        var core = version?.Split('-', '+')[0];
        return Version.TryParse(core, out var parsed) && parsed >= new Version(2, 10);
    }

    private static void ThrowIfInvalid(NatsJetStreamSourceOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid NatsJetStreamSourceOptions: " + string.Join(" ", errors), nameof(options));
        }
    }

    // Keeps only the reply subject until the outcome, not the message: one object less per message held until its file commits.
    private sealed class SourceAckToken(NatsJetStreamSource owner, byte[] replyTo, long handedOut) : AckToken
    {
        public long LastTouched = handedOut;

        // Links in the outstanding list (guarded by its lock): no node allocated per message.
        public SourceAckToken? Previous;
        public SourceAckToken? Next;

        public byte[] ReplyTo { get; } = replyTo;

        protected override void OnCompleted(AckOutcome outcome) => owner.OnSettled(this, outcome);

        protected override void OnInProgress() => owner.RequestInProgress(this);
    }

    /// <summary>
    /// The tokens handed out and not settled yet, linked through the tokens themselves: one lock-protected insert and
    /// unlink per message instead of a dictionary node, and a snapshot for the keep-alive scan.
    /// </summary>
    private sealed class OutstandingTokens
    {
        private readonly Lock _lock = new();
        private SourceAckToken? _head;
        private SourceAckToken? _tail;
        private int _count;

        public int Count => Volatile.Read(ref _count);

        public bool IsEmpty => Count == 0;

        public void Add(SourceAckToken token)
        {
            lock (_lock)
            {
                token.Previous = _tail;
                token.Next = null;
                if (_tail is null)
                {
                    _head = token;
                }
                else
                {
                    _tail.Next = token;
                }

                _tail = token;
                _count++;
            }
        }

        /// <summary>Unlinks a token; called once per token, from its one final outcome.</summary>
        public void Remove(SourceAckToken token)
        {
            lock (_lock)
            {
                if (token.Previous is null)
                {
                    _head = token.Next;
                }
                else
                {
                    token.Previous.Next = token.Next;
                }

                if (token.Next is null)
                {
                    _tail = token.Previous;
                }
                else
                {
                    token.Next.Previous = token.Previous;
                }

                token.Previous = null;
                token.Next = null;
                _count--;
            }
        }

        /// <summary>The tokens outstanding now, oldest first (copied, so the caller acts on them outside the lock).</summary>
        public List<SourceAckToken> Snapshot()
        {
            lock (_lock)
            {
                var tokens = new List<SourceAckToken>(_count);
                for (var token = _head; token is not null; token = token.Next)
                {
                    tokens.Add(token);
                }

                return tokens;
            }
        }
    }
}

/// <summary>How far behind a JetStream consumer is, as the server reports it.</summary>
/// <param name="Pending">Messages matching the consumer's filter not yet delivered (the lag).</param>
/// <param name="AckPending">Messages delivered and waiting for an outcome, across every process sharing the consumer.</param>
/// <param name="Redelivered">Messages delivered more than once and still unacknowledged.</param>
public sealed record NatsConsumerLag(long Pending, long AckPending, long Redelivered);
