using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Protocol;
using Microsoft.Extensions.Logging;

namespace Kawa.Dataflow.Nats.JetStream;

/// <summary>How a pull consumer fetches.</summary>
internal sealed class NatsPullConsumerOptions
{
    /// <summary>Messages requested and held at most (in flight from the server plus buffered here); default 256.</summary>
    public int BatchSize { get; init; } = 256;

    /// <summary>Byte budget per pull request, 0 for none; default 0.</summary>
    public long MaxBytes { get; init; }

    /// <summary>How long a pull request stays open on the server; default 30 s.</summary>
    public TimeSpan Expires { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Server heartbeat interval while a pull is open; at most half of <see cref="Expires"/>; default 5 s.
    /// Two missed heartbeats re-issue the pull.</summary>
    public TimeSpan IdleHeartbeat { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Refill when requested-plus-buffered messages drop to this fraction of the batch; default 0.5.</summary>
    public double RefillThreshold { get; init; } = 0.5;

    /// <summary>Send no pull before the first <see cref="NatsPullConsumer.NextAsync"/> or
    /// <see cref="NatsPullConsumer.Resize"/> (default <see langword="false"/>: pull at start), so a window set after the
    /// start is the first one the server sees.</summary>
    public bool PullOnFirstRead { get; init; }

    public void Validate()
    {
        var errors = new List<string>();
        if (BatchSize < 1)
        {
            errors.Add($"{nameof(BatchSize)}: must be at least 1.");
        }

        if (MaxBytes < 0)
        {
            errors.Add($"{nameof(MaxBytes)}: must not be negative.");
        }

        if (Expires < TimeSpan.FromMilliseconds(100))
        {
            errors.Add($"{nameof(Expires)}: must be at least 100 ms.");
        }

        if (IdleHeartbeat <= TimeSpan.Zero || IdleHeartbeat > Expires / 2)
        {
            errors.Add($"{nameof(IdleHeartbeat)}: must be positive and at most half of {nameof(Expires)}.");
        }

        if (RefillThreshold is <= 0 or > 1)
        {
            errors.Add($"{nameof(RefillThreshold)}: must be in (0, 1].");
        }

        if (errors.Count > 0)
        {
            throw new ArgumentException("Invalid pull consumer options: " + string.Join(" ", errors));
        }
    }
}

/// <summary>
/// Consumes a JetStream pull consumer one message at a time, keeping a batch requested ahead.
/// </summary>
/// <remarks>
/// <para>Pulls go to <c>$JS.API.CONSUMER.MSG.NEXT.&lt;stream&gt;.&lt;consumer&gt;</c> with a private inbox as reply,
/// asking for <c>batch</c>, <c>expires</c>, <c>idle_heartbeat</c> and optionally <c>max_bytes</c>. Requested plus
/// buffered messages never exceed the batch (memory is bounded); when they fall to the refill threshold the
/// consumer asks for the difference, so the pipe does not run dry.</para>
/// <para>Statuses: 100 heartbeat (liveness), 404/408 (request ended; its unfilled count is released by the
/// <c>Nats-Pending-Messages</c> header), 409 <c>Message Size Exceeds MaxBytes</c> (the pull's byte budget is spent:
/// released the same way and re-pulled at once; fatal when not even one message fitted the whole budget), 409
/// leadership change or server shutdown (re-pull), 409 <c>Consumer Deleted</c>,
/// 409 <c>Exceeded MaxRequest…</c>, 400 (FATAL: <see cref="NextAsync"/> throws <see cref="NatsJetStreamConsumerException"/>,
/// never a silent stall), 503 no responders (the consumer is looked up: gone is fatal, otherwise re-pull).
/// No heartbeat for 2 × idle_heartbeat while a pull is open re-issues the pull and looks the consumer up (gone is
/// fatal, as after a 503). A reconnect re-issues the pull once a lookup shows the consumer led again (asked every
/// 250 ms, for at most 2 × idle_heartbeat), since a pull reaching a consumer whose leader was lost is dropped unanswered.</para>
/// <para>With a byte budget (<c>max_bytes</c>) one pull is open at a time and the bytes it delivered are counted as the
/// server counts them (subject, reply subject, headers, payload): a pull whose budget is used up exactly ends on the
/// server without a status, and is taken as ended here at once instead of at the missed-heartbeat timeout.</para>
/// <para>Acks belong to each <see cref="JetStreamMsg"/>. Messages still buffered at dispose are not acked: the
/// server redelivers them after the ack wait.</para>
/// </remarks>
internal sealed partial class NatsPullConsumer : IAsyncDisposable
{
    private readonly JetStreamContext _js;
    private readonly NatsConnection _connection;
    private readonly NatsPullConsumerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private PullSubscription _subscription;
    private readonly Channel<JetStreamMsg> _messages;
    private int _batchSize;
    private long _maxBytes;
    private int _capacity;
    private int _refillAt;
    private volatile bool _reading;
    private readonly Channel<bool> _signal = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly string _pullSubject;

    private int _pending;

    // With a byte budget, one pull is open at a time and its budget is tracked here (guarded by _lock), because the
    // server ends a pull whose budget is used up exactly without telling: 0 when no budgeted pull is open.
    private long _pullBudget;
    private long _budgetLeft;
    private int _buffered; // messages in _messages: counted here so the hot path never asks the channel (a lock)

    // The read loop's last subject, so a stream of messages on one subject makes one string, not one per message.
    private byte[] _lastSubjectBytes = [];
    private string _lastSubject = string.Empty;
    private long _lastActivity;
    private volatile bool _checkConsumer;
    private volatile bool _renewInbox;

    // After a reconnect the consumer may have no leader yet (the lost node led it), and a pull sent then is dropped
    // without any answer: it would be re-issued only at the missed-heartbeat timeout. So pulls wait until a lookup shows
    // the consumer led, probing every LeaderProbeInterval, for at most 2 x idle_heartbeat (then pull anyway: the lookup
    // may be refused by permissions, and a pull is what the missed-heartbeat check watches).
    // Acks wait too (those written then are dropped as well): the ack sender waits for _leaderUp. The three fields
    // below change together under _leaderLock; a wait still open at a second reconnect carries over to it, so whoever
    // waits on it is released by whatever ends the new wait.
    private readonly Lock _leaderLock = new();
    private volatile bool _awaitLeader;
    private volatile TaskCompletionSource _leaderUp = CompletedSignal();
    private long _awaitLeaderSince;
    private long _leaderProbes;
    private volatile bool _disposed;
    private volatile bool _stopFetching;
    private long _pauseUntil;
    private volatile Exception? _fatal;
    private Task? _driver;
    private Task? _ackSender;

    // Unbounded on purpose: it holds at most one final outcome per message handed out (plus keep-alives), and the
    // pipeline bounds the messages in flight; enqueueing must never block an ack token.
    private readonly Channel<PendingAck> _acks =
        Channel.CreateUnbounded<PendingAck>(new UnboundedChannelOptions { SingleReader = true });
    private const int MaxAcksPerWrite = 1024;

    private long _acksLost;
    private long _acksSent;
    private long _pullsIssued;
    private long _missedHeartbeatReissues;
    private long _consumerLookups;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, long> _statuses = new();
    private long _heartbeats; // counted apart from _statuses: a heartbeat is not parsed, and costs no dictionary update

    internal NatsPullConsumer(JetStreamContext js, string stream, string consumer, NatsPullConsumerOptions options)
    {
        options.Validate();
        _js = js;
        _connection = js.Connection;
        _options = options;
        _logger = _connection.Logger;
        _timeProvider = _connection.TimeProvider;
        Stream = stream;
        Consumer = consumer;
        _subscription = new PullSubscription(this, _connection.Options.InboxPrefix + "." + Nuid.Next());
        // Room for two batches: after a reconnect, pulls still open on the server from the old connection may deliver
        // (at most one batch) until the inbox is renewed, on top of the new batch.
        // Bounded by the pull accounting (requested + buffered <= batch) and checked against _capacity on write; the
        // unbounded channel's single-reader fast path takes no lock per message.
        _batchSize = options.BatchSize;
        _maxBytes = options.MaxBytes;
        _capacity = (2 * options.BatchSize) + 1;
        _refillAt = (int)(options.BatchSize * options.RefillThreshold);
        _reading = !options.PullOnFirstRead;
        _messages = Channel.CreateUnbounded<JetStreamMsg>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        _pullSubject = js.ApiSubject($"CONSUMER.MSG.NEXT.{stream}.{consumer}");
    }

    public string Stream { get; }

    public string Consumer { get; }

    /// <summary>The inbox subscription the server delivers to (tests feed it frames).</summary>
    internal NatsSubscriptionBase Inbox => _subscription;

    /// <summary>Pull requests sent so far.</summary>
    public long PullsIssued => Interlocked.Read(ref _pullsIssued);

    /// <summary>Times the open pulls were given up for lost because no heartbeat came for 2 × idle_heartbeat.</summary>
    public long MissedHeartbeatReissues => Interlocked.Read(ref _missedHeartbeatReissues);

    /// <summary>Lookups after a reconnect that waited for the consumer to have a leader before pulling.</summary>
    public long LeaderProbes => Interlocked.Read(ref _leaderProbes);

    /// <summary>How often a consumer without a leader is looked up again after a reconnect (also each lookup's timeout).</summary>
    internal static readonly TimeSpan LeaderProbeInterval = TimeSpan.FromMilliseconds(250);

    /// <summary>Times the consumer was looked up to decide whether it is gone (after a 503 or missed heartbeats).</summary>
    public long ConsumerLookups => Interlocked.Read(ref _consumerLookups);

    /// <summary>Status messages with <paramref name="code"/> received so far (100 heartbeats, 408 expiries, ...).</summary>
    public long StatusesReceived(int code) => code == 100 ? Interlocked.Read(ref _heartbeats) : _statuses.TryGetValue(code, out var count) ? count : 0;

    /// <summary>The messages requested and held at most: the largest pull batch sent from now on.</summary>
    public int BatchSize => Volatile.Read(ref _batchSize);

    /// <summary>The byte budget of each pull sent from now on (0: none).</summary>
    public long MaxBytes => Interlocked.Read(ref _maxBytes);

    /// <summary>
    /// Changes the window for pulls sent from now on, and starts pulling if it waited for the first read. Pulls already
    /// open on the server keep their size, so the buffer keeps room for the larger of the old and new windows.
    /// </summary>
    public void Resize(int batchSize, long maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        lock (_lock)
        {
            Volatile.Write(ref _batchSize, batchSize);
            Interlocked.Exchange(ref _maxBytes, maxBytes);
            Volatile.Write(ref _refillAt, (int)(batchSize * _options.RefillThreshold));
            Volatile.Write(ref _capacity, Math.Max(_capacity, (2 * batchSize) + 1));
        }

        _reading = true;
        Signal();
    }

    /// <summary>Messages requested from the server and not yet arrived (for tests and diagnostics).</summary>
    public int PendingMessages
    {
        get
        {
            lock (_lock)
            {
                return _pending;
            }
        }
    }

    /// <summary>Subscribes the inbox and starts pulling.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (_driver is not null)
        {
            throw new InvalidOperationException("The pull consumer is already started.");
        }

        await _connection.SubscribeCoreAsync(_subscription, cancellationToken).ConfigureAwait(false);
        _connection.Reconnected += OnReconnected;
        _lastActivity = _timeProvider.GetTimestamp();
        _driver = Task.Run(DriveAsync, CancellationToken.None);
        _ackSender = Task.Run(SendAcksAsync, CancellationToken.None);
        Signal();
    }

    /// <summary>Acks that could not be sent (the messages will be redelivered after the ack wait).</summary>
    public long AcksLost => Interlocked.Read(ref _acksLost);

    /// <summary>Outcomes queued through <see cref="EnqueueAck(byte[], AckKind?, TimeSpan)"/> and written to the connection (sent, or held in its
    /// reconnect buffer while disconnected).</summary>
    public long AcksSent => Interlocked.Read(ref _acksSent);

    /// <summary>Stops issuing pulls (graceful drain): buffered messages are still returned and outcomes still sent.
    /// Pulls already open on the server may still deliver until they expire.</summary>
    public void StopFetching() => _stopFetching = true;

    /// <summary>A fresh ack token for <paramref name="message"/>: outcomes are queued and sent in the background.</summary>
    public AckToken CreateAckToken(JetStreamMsg message) => new JetStreamAckToken(this, message);

    internal void EnqueueAck(JetStreamMsg message, AckKind? kind, TimeSpan delay) => EnqueueAck(message.ReplyToBytes, kind, delay);

    /// <summary>Queues an outcome for the message whose reply subject is <paramref name="replyTo"/>.</summary>
    internal void EnqueueAck(byte[] replyTo, AckKind? kind, TimeSpan delay)
    {
        if (!_acks.Writer.TryWrite(new PendingAck(replyTo, kind, delay)))
        {
            // Disposed: the server redelivers after the ack wait.
            Interlocked.Increment(ref _acksLost);
        }
    }

    /// <summary>Sends queued outcomes: whatever has accumulated goes out as one write (one lock, one hand-off to the
    /// socket pump), so a burst of acks costs a few socket writes, not one per ack.</summary>
    /// <remarks>While disconnected, outcomes go one at a time, each charged to the reconnect buffer on its own: as many
    /// as fit are kept and sent after the reconnect; the rest are counted in <see cref="AcksLost"/> (those messages are
    /// redelivered after the ack wait).</remarks>
    private async Task SendAcksAsync()
    {
        var reader = _acks.Reader;
        var batch = new List<PendingAck>(MaxAcksPerWrite);
        var single = new List<PendingAck>(1);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            while (batch.Count < MaxAcksPerWrite && reader.TryRead(out var ack))
            {
                batch.Add(ack);
            }

            if (_connection.State == NatsConnectionState.Connected)
            {
                // Just reconnected, and the consumer may have no leader yet: acks written now would be dropped.
                await _leaderUp.Task.ConfigureAwait(false);
                await WriteAcksAsync(batch).ConfigureAwait(false);
                continue;
            }

            foreach (var ack in batch)
            {
                single.Clear();
                single.Add(ack);
                await WriteAcksAsync(single).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteAcksAsync(List<PendingAck> acks)
    {
        long size = 0;
        foreach (var ack in acks)
        {
            size += JetStreamMsg.OutcomeSize(ack.ReplyTo);
        }

        try
        {
            await _connection.WriteAsync(size, acks.Count, acks, static (writer, acks) =>
            {
                foreach (var ack in acks)
                {
                    JetStreamMsg.WriteOutcome(writer, ack.ReplyTo, ack.Kind, ack.Delay);
                }
            }).ConfigureAwait(false);
            Interlocked.Add(ref _acksSent, acks.Count);
        }
        catch (NatsConnectionException ex) when (_connection.State == NatsConnectionState.Closed)
        {
            Interlocked.Add(ref _acksLost, acks.Count);
            Fail(ex);
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException)
        {
            Interlocked.Add(ref _acksLost, acks.Count);
            LogAcksLost(_logger, Stream, Consumer, acks.Count, ex.Message);
        }
    }

    /// <summary>Waits for the next message.</summary>
    /// <exception cref="NatsJetStreamConsumerException">The consumer failed for good (deleted, limits broken).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> fired.</exception>
    public async ValueTask<JetStreamMsg> NextAsync(CancellationToken cancellationToken = default)
    {
        if (!_reading)
        {
            _reading = true;
            Signal();
        }

        while (true)
        {
            if (_messages.Reader.TryRead(out var msg))
            {
                Interlocked.Decrement(ref _buffered);
                SignalIfLow();
                return msg;
            }

            if (!await _messages.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw _fatal ?? new ObjectDisposedException(nameof(NatsPullConsumer), "The pull consumer was disposed.");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _disposed = true;
        _connection.Reconnected -= OnReconnected;
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_driver is not null)
        {
            await _driver.ConfigureAwait(false);
        }

        _messages.Writer.TryComplete();

        // Send the outcomes already given before leaving (bounded: a dead connection must not hold dispose forever).
        StopAwaitingLeader();
        _acks.Writer.TryComplete();
        if (_ackSender is not null)
        {
            try
            {
                await _ackSender.WaitAsync(_connection.Options.RequestTimeout, _timeProvider).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                LogAckLost(_logger, Stream, Consumer, "pending", "dispose timed out sending queued acks");
            }
        }

        try
        {
            await _connection.UnsubscribeAsync(_subscription).ConfigureAwait(false);
        }
        catch (NatsException)
        {
            // The connection is gone; so is the subscription.
        }

        _stop.Dispose();
    }

    private void OnReconnected()
    {
        lock (_lock)
        {
            ClearPending(); // The old pulls died with the old connection (or are orphaned: the inbox is renewed).
        }

        _renewInbox = true;
        if (_fatal is null && !_disposed)
        {
            lock (_leaderLock)
            {
                Interlocked.Exchange(ref _awaitLeaderSince, _timeProvider.GetTimestamp());
                if (_leaderUp.Task.IsCompleted)
                {
                    _leaderUp = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                _awaitLeader = true;
            }
        }

        Signal();
    }

    private void Signal() => _signal.Writer.TryWrite(true);

    private void SignalIfLow()
    {
        // Lock free: a stale read only moves the refill by a message; the driver decides under the lock.
        if (Volatile.Read(ref _pending) + Volatile.Read(ref _buffered) <= Volatile.Read(ref _refillAt))
        {
            Signal();
        }
    }

    private async Task DriveAsync()
    {
        var stop = _stop.Token;
        while (!stop.IsCancellationRequested && _fatal is null)
        {
            try
            {
                if (_checkConsumer)
                {
                    await CheckConsumerAsync(stop).ConfigureAwait(false);
                }

                if (_renewInbox && _connection.State == NatsConnectionState.Connected)
                {
                    await RenewInboxAsync(stop).ConfigureAwait(false);
                }

                if (_awaitLeader && _fatal is null && _connection.State == NatsConnectionState.Connected)
                {
                    await ProbeLeaderAsync(stop).ConfigureAwait(false);
                }

                if (_fatal is null && !_awaitLeader && _connection.State == NatsConnectionState.Connected
                    && _timeProvider.GetTimestamp() >= Interlocked.Read(ref _pauseUntil))
                {
                    await PullIfNeededAsync(stop).ConfigureAwait(false);
                }

                using var tick = new CancellationTokenSource(_awaitLeader ? LeaderProbeInterval : _options.IdleHeartbeat, _timeProvider);
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(stop, tick.Token);
                try
                {
                    if (await _signal.Reader.WaitToReadAsync(wait.Token).ConfigureAwait(false))
                    {
                        _signal.Reader.TryRead(out _);
                    }
                }
                catch (OperationCanceledException) when (!stop.IsCancellationRequested)
                {
                    // Periodic wake-up: check heartbeats.
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogPullFailed(_logger, Stream, Consumer, ex.Message);
                try
                {
                    await Task.Delay(_options.IdleHeartbeat, _timeProvider, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task PullIfNeededAsync(CancellationToken stop)
    {
        if (_stopFetching || !_reading)
        {
            return;
        }

        int request;
        long maxBytes;
        lock (_lock)
        {
            if (_pending > 0 && _timeProvider.GetElapsedTime(_lastActivity) > _options.IdleHeartbeat * 2)
            {
                LogMissedHeartbeats(_logger, Stream, Consumer, _pending);
                NatsTelemetry.MissedHeartbeats.Add(1);
                Interlocked.Increment(ref _missedHeartbeatReissues);
                ClearPending();

                // A consumer deleted while its 409 could not reach us (or a pull nobody serves: nats-server answers a pull
                // for a missing consumer with silence, not 503) looks like this too: look it up before the next round.
                _checkConsumer = true;
            }

            maxBytes = _maxBytes;
            if (maxBytes > 0 && _pending > 0)
            {
                return; // Budgeted pulls go one at a time, so each message is charged to the right budget.
            }

            var held = _pending + Volatile.Read(ref _buffered);
            request = held <= _refillAt ? _batchSize - held : 0;
            if (request <= 0)
            {
                return;
            }

            if (_pending == 0)
            {
                _lastActivity = _timeProvider.GetTimestamp();
            }

            _pending += request;
            _pullBudget = maxBytes;
            _budgetLeft = maxBytes;
        }

        var body = JsonSerializer.SerializeToUtf8Bytes(
            new PullRequest { Batch = request, Expires = _options.Expires, IdleHeartbeat = _options.IdleHeartbeat, MaxBytes = maxBytes },
            JetStreamJsonContext.Default.PullRequest);
        try
        {
            await _connection.PublishAsync(_pullSubject, body, null, _subscription.Subject, stop).ConfigureAwait(false);
            Interlocked.Increment(ref _pullsIssued);
            NatsTelemetry.PullRequests.Add(1);
        }
        catch
        {
            lock (_lock)
            {
                _pending = Math.Max(0, _pending - request);
                if (_pending == 0)
                {
                    ClearPending();
                }
            }

            throw;
        }
    }

    /// <summary>A fresh inbox after a reconnect, so pulls the server still holds for the old one find no interest.</summary>
    private async Task RenewInboxAsync(CancellationToken stop)
    {
        _renewInbox = false;
        var old = _subscription;
        var fresh = new PullSubscription(this, _connection.Options.InboxPrefix + "." + Nuid.Next());
        await _connection.SubscribeCoreAsync(fresh, stop).ConfigureAwait(false);
        _subscription = fresh;
        lock (_lock)
        {
            ClearPending();
        }

        await _connection.UnsubscribeAsync(old, stop).ConfigureAwait(false);
    }

    /// <summary>Holds pulls back a while after a status that says pulling again at once would only repeat it.</summary>
    private void PauseRepulls()
        => Interlocked.Exchange(ref _pauseUntil, _timeProvider.GetTimestamp() + (long)(_options.IdleHeartbeat.TotalSeconds * _timeProvider.TimestampFrequency / 2));

    private async Task CheckConsumerAsync(CancellationToken stop)
    {
        _checkConsumer = false;
        Interlocked.Increment(ref _consumerLookups);
        try
        {
            await _js.GetConsumerAsync(Stream, Consumer, stop).ConfigureAwait(false);
        }
        catch (JetStreamApiException ex) when (ex.ErrorCode is JetStreamContext.ConsumerNotFound or JetStreamContext.StreamNotFound)
        {
            FailConsumerGone(ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            // Transient (a leader election, JetStream restarting, a timeout): ask again on the next round, and pull
            // meanwhile, since a consumer whose leader is back serves the pull without being asked about.
            _checkConsumer = true;
            LogPullFailed(_logger, Stream, Consumer, "consumer lookup: " + ex.Message);
        }
    }

    /// <summary>
    /// After a reconnect: looks the consumer up once; pulls may go out once it has a leader (or is gone: fatal), or once
    /// 2 x idle_heartbeat passed since the reconnect. A lookup that fails or finds no leader is asked again after
    /// <see cref="LeaderProbeInterval"/>.
    /// </summary>
    private async Task ProbeLeaderAsync(CancellationToken stop)
    {
        var since = Interlocked.Read(ref _awaitLeaderSince);
        if (_timeProvider.GetElapsedTime(since) > _options.IdleHeartbeat * 2)
        {
            StopAwaitingLeader(since);
            return;
        }

        Interlocked.Increment(ref _leaderProbes);
        using var timeout = new CancellationTokenSource(LeaderProbeInterval, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, timeout.Token);
        try
        {
            var info = await _js.GetConsumerAsync(Stream, Consumer, linked.Token).ConfigureAwait(false);

            // A clustered consumer names its leader; one on a single server has no cluster group at all.
            if (info.Cluster is null || !string.IsNullOrEmpty(info.Cluster.Leader))
            {
                StopAwaitingLeader(since);
            }
        }
        catch (JetStreamApiException ex) when (ex.ErrorCode is JetStreamContext.ConsumerNotFound or JetStreamContext.StreamNotFound)
        {
            FailConsumerGone(ex);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            // No leader yet (no answer, a timeout, "JetStream not available"): asked again after the probe interval.
        }
    }

    /// <summary>Ends the wait for a leader, unless <paramref name="since"/> names a wait a later reconnect replaced (a
    /// lookup answered for an earlier connection says nothing of this one).</summary>
    private void StopAwaitingLeader(long? since = null)
    {
        lock (_leaderLock)
        {
            if (since is { } started && started != Interlocked.Read(ref _awaitLeaderSince))
            {
                return;
            }

            _awaitLeader = false;
            _leaderUp.TrySetResult();
        }
    }

    private static TaskCompletionSource CompletedSignal()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    private void FailConsumerGone(JetStreamApiException lookup) => Fail(new NatsJetStreamConsumerException(
        $"JetStream consumer '{Consumer}' on stream '{Stream}' no longer exists ({lookup.Description}); messages not yet acked will go to whoever consumes a re-created consumer.",
        lookup.Code, consumerDeleted: true));

    private void Fail(Exception error)
    {
        if (_fatal is not null)
        {
            return;
        }

        _fatal = error;
        StopAwaitingLeader();
        LogFatal(_logger, Stream, Consumer, error.Message);
        _messages.Writer.TryComplete();
        Signal();
    }

    // Runs on the connection's read loop: never blocks.
    private void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headerBytes, in ReadOnlySequence<byte> payload)
    {
        // The status is read from the header block's first line: no header object, no string, for a heartbeat or a
        // message. Only the rare statuses that need their description or fields are parsed.
        var status = headerBytes.IsEmpty ? 0 : NatsHeaders.ReadStatusCode(headerBytes);
        var now = _timeProvider.GetTimestamp();
        if (status > 0 && payload.IsEmpty)
        {
            Volatile.Write(ref _lastActivity, now);
            if (status == 100)
            {
                Interlocked.Increment(ref _heartbeats);
            }
            else
            {
                OnStatus(NatsHeaders.Parse(headerBytes));
            }

            return;
        }

        if (replyTo.IsEmpty)
        {
            LogUnexpected(_logger, Stream, Consumer, Encoding.UTF8.GetString(subject));
            return;
        }

        var msg = new JetStreamMsg(_connection, SubjectString(subject), replyTo.ToArray(), headerBytes.IsEmpty ? null : headerBytes.ToArray(), payload.ToArray(), Stream, Consumer);
        var budgetSpent = false;
        lock (_lock)
        {
            _pending = Math.Max(0, _pending - 1);
            _lastActivity = now;
            if (_budgetLeft > 0)
            {
                // The server's measure of a delivery; a pull whose budget reaches exactly 0 ends with no status.
                _budgetLeft -= subject.Length + replyTo.Length + headerBytes.Length + payload.Length;
                if (_budgetLeft <= 0 && _pending > 0)
                {
                    budgetSpent = true;
                    ClearPending();
                }
            }
        }

        if (budgetSpent)
        {
            Signal();
        }

        if (Interlocked.Increment(ref _buffered) > Volatile.Read(ref _capacity) || !_messages.Writer.TryWrite(msg))
        {
            // Cannot happen while requested + buffered <= batch (or after dispose); the server redelivers after ack wait.
            Interlocked.Decrement(ref _buffered);
            if (!_disposed)
            {
                LogOverflow(_logger, Stream, Consumer);
            }
        }
    }

    private string SubjectString(ReadOnlySpan<byte> subject)
    {
        if (!subject.SequenceEqual(_lastSubjectBytes))
        {
            _lastSubject = Encoding.UTF8.GetString(subject);
            _lastSubjectBytes = subject.ToArray();
        }

        return _lastSubject;
    }

    private void OnStatus(NatsHeaders headers)
    {
        var description = headers.StatusDescription ?? string.Empty;
        _statuses.AddOrUpdate(headers.StatusCode, 1, static (_, count) => count + 1);
        switch (headers.StatusCode)
        {
            case 100:
                return; // Heartbeat: liveness already recorded.
            case 404:
            case 408:
                Release(headers);
                return;
            case 409 when description.Contains("Consumer Deleted", StringComparison.OrdinalIgnoreCase):
                Fail(new NatsJetStreamConsumerException(
                    $"JetStream consumer '{Consumer}' on stream '{Stream}' was deleted while pulling (409 Consumer Deleted); messages not yet acked will go to whoever consumes a re-created consumer.",
                    409, consumerDeleted: true));
                return;
            case 409 when description.StartsWith("Exceeded MaxRequest", StringComparison.OrdinalIgnoreCase)
                || description.Contains("push based", StringComparison.OrdinalIgnoreCase):
                Fail(new NatsJetStreamConsumerException(
                    $"JetStream consumer '{Consumer}' on stream '{Stream}' refused the pull: 409 {description}. Lower the batch/expires/max bytes or raise the consumer's limits.",
                    409, consumerDeleted: false));
                return;
            case 409 when description.Contains("Leadership Change", StringComparison.OrdinalIgnoreCase)
                || description.Contains("Server Shutdown", StringComparison.OrdinalIgnoreCase):
                lock (_lock)
                {
                    ClearPending();
                }

                LogRepull(_logger, Stream, Consumer, description);
                Signal();
                return;
            case 409 when description.Contains("Message Size Exceeds MaxBytes", StringComparison.OrdinalIgnoreCase):
                OnByteBudgetSpent(headers);
                return;
            case 409:
                // e.g. Exceeded MaxWaiting: re-pull, but not in a tight loop.
                LogRepull(_logger, Stream, Consumer, description);
                PauseRepulls();
                Release(headers);
                return;
            case 400:
                Fail(new NatsJetStreamConsumerException($"JetStream rejected the pull request for '{Consumer}' on '{Stream}': 400 {description}.", 400, consumerDeleted: false));
                return;
            case 503:
                lock (_lock)
                {
                    ClearPending();
                }

                _checkConsumer = true;
                Signal();
                return;
            default:
                LogRepull(_logger, Stream, Consumer, $"{headers.StatusCode} {description}");
                PauseRepulls();
                Release(headers);
                return;
        }
    }

    /// <summary>
    /// The open pull's byte budget cannot take the next message: the pull is over. Its unfilled count is released and
    /// the next pull goes out at once, not after a pause or the missed-heartbeat timeout. A budget untouched means one
    /// message is larger than the whole budget, which no pull could ever deliver: that fails the consumer instead of
    /// pulling in a loop.
    /// </summary>
    private void OnByteBudgetSpent(NatsHeaders headers)
    {
        long budget;
        lock (_lock)
        {
            budget = _pullBudget;
        }

        if (budget > 0 && headers.TryGetValue("Nats-Pending-Bytes", out var text)
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var unused) && unused >= budget)
        {
            Fail(new NatsJetStreamConsumerException(
                $"JetStream consumer '{Consumer}' on stream '{Stream}' holds a message larger than the pull byte budget ({budget.ToString(CultureInfo.InvariantCulture)} bytes, counting subject, reply subject, headers and payload), which no pull can deliver: raise the byte budget (PrefetchBytes) or leave it unset.",
                409, consumerDeleted: false));
            return;
        }

        Release(headers);
    }

    /// <summary>No pull is open any more. Caller holds <see cref="_lock"/>.</summary>
    private void ClearPending()
    {
        _pending = 0;
        _budgetLeft = 0;
    }

    private void Release(NatsHeaders headers)
    {
        lock (_lock)
        {
            if (headers.TryGetValue("Nats-Pending-Messages", out var text) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var unfilled))
            {
                _pending = Math.Max(0, _pending - unfilled);
            }
            else
            {
                _pending = 0;
            }

            if (_pending == 0)
            {
                ClearPending();
            }
        }

        Signal();
    }

    private sealed class PullSubscription(NatsPullConsumer owner, string subject) : NatsSubscriptionBase(subject, null)
    {
        internal override void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
            => owner.OnMessage(subject, replyTo, headers, payload);

        internal override void OnClosed(Exception? error)
        {
            // The current inbox closing means the connection closed: a reader must not wait forever.
            // (An inbox replaced after a reconnect, or our own dispose, is not a failure.)
            if (!owner._disposed && ReferenceEquals(owner._subscription, this))
            {
                owner.Fail(error ?? new NatsConnectionException($"The NATS connection under pull consumer '{owner.Consumer}' on '{owner.Stream}' was closed."));
            }
        }
    }

    [LoggerMessage(101, LogLevel.Warning, "JetStream pull {Stream}/{Consumer}: no heartbeat for 2 x idle_heartbeat with {Pending} message(s) requested; re-issuing the pull")]
    private static partial void LogMissedHeartbeats(ILogger logger, string stream, string consumer, int pending);

    [LoggerMessage(102, LogLevel.Error, "JetStream pull {Stream}/{Consumer} failed for good: {Reason}")]
    private static partial void LogFatal(ILogger logger, string stream, string consumer, string reason);

    [LoggerMessage(103, LogLevel.Information, "JetStream pull {Stream}/{Consumer}: {Status}; re-pulling")]
    private static partial void LogRepull(ILogger logger, string stream, string consumer, string status);

    [LoggerMessage(104, LogLevel.Warning, "JetStream pull {Stream}/{Consumer}: could not pull: {Reason}")]
    private static partial void LogPullFailed(ILogger logger, string stream, string consumer, string reason);

    [LoggerMessage(105, LogLevel.Error, "JetStream pull {Stream}/{Consumer}: buffer overflow; the message will be redelivered after the ack wait")]
    private static partial void LogOverflow(ILogger logger, string stream, string consumer);

    [LoggerMessage(107, LogLevel.Warning, "JetStream pull {Stream}/{Consumer}: {Kind} could not be sent ({Reason}); the message will be redelivered after the ack wait")]
    private static partial void LogAckLost(ILogger logger, string stream, string consumer, string kind, string reason);

    [LoggerMessage(108, LogLevel.Warning, "JetStream pull {Stream}/{Consumer}: {Count} outcome(s) could not be sent ({Reason}); those messages will be redelivered after the ack wait")]
    private static partial void LogAcksLost(ILogger logger, string stream, string consumer, int count, string reason);

    private readonly record struct PendingAck(byte[] ReplyTo, AckKind? Kind, TimeSpan Delay);

    [LoggerMessage(106, LogLevel.Warning, "JetStream pull {Stream}/{Consumer}: message without ack subject on '{Subject}' ignored")]
    private static partial void LogUnexpected(ILogger logger, string stream, string consumer, string subject);
}
