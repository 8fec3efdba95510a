using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Nats.Auth;
using Kawa.Dataflow.Nats.Protocol;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Nats.Client;

/// <summary>
/// A NATS connection: handshake, keep-alive, subscriptions, publish, request/reply, reconnect.
/// </summary>
/// <remarks>
/// <para>Writes go into one outbound pipe under a lock, each as a complete protocol operation; a pump copies whatever
/// has accumulated to the socket, so bursts coalesce into few large writes. Reads are parsed in place on one loop
/// that hands each message to its subscription.</para>
/// <para>Reconnect: when the socket fails, the pipe keeps what was not yet written (it always starts at an operation
/// boundary), the client reconnects, re-subscribes, and the pump resumes with that backlog, dropping stale PING/PONG.
/// Data whose socket write had not completed is sent again (a possible duplicate); data the old socket accepted but
/// the server never processed is lost (core NATS is at-most-once; JetStream redelivers unacked messages and a lost
/// publish surfaces as a PubAck timeout). See <see cref="NatsConnectionOptions"/> for the reconnect buffer's rules.</para>
/// <para>Flush (<see cref="FlushAsync"/>) is a PING/PONG round trip: when it completes the server has processed
/// everything written before it. A flush pending when the connection is lost fails with
/// <see cref="NatsConnectionException"/>.</para>
/// </remarks>
internal sealed partial class NatsConnection : INatsProtocolHandler, IAsyncDisposable
{
    private readonly NatsConnectionOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _timeProvider;
    private readonly NatsCredentials _credentials;
    private readonly Pipe _outbound;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly NatsProtocolParser _parser = new();
    private readonly ConcurrentDictionary<long, NatsSubscriptionBase> _subscriptions = new();
    private readonly Queue<TaskCompletionSource?> _pongWaiters = new();
    private readonly Lock _stateLock = new();
    private readonly CancellationTokenSource _disposeCts = new();
    private readonly List<NatsServerAddress> _servers = [];
    private readonly ConcurrentDictionary<long, TaskCompletionSource<NatsMsg>> _requests = new();
    private readonly string _inboxPrefix;

    // Written under _stateLock; volatile so the write fast path can read it without the lock.
    private volatile NatsConnectionState _state = NatsConnectionState.Disconnected;
    private TaskCompletionSource _connectedSignal = NewSignal();
    private ServerInfo _info = new();
    private NatsServerAddress? _currentServer;
    private Task? _lifecycle;
    private long _nextSid;
    private long _nextRequestId;
    private long _bufferedWhileDisconnected;
    private int _pingsOut;
    private long _serverPingsAnswered;
    private long _serverErrors;
    private long _reconnects;
    private Task? _inboxSubscribed;
    private Exception? _closeError;
    private string? _lastValidSubject;

    public NatsConnection(NatsConnectionOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.ThrowIfInvalid();
        _options = options;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NatsConnection>();
        _timeProvider = timeProvider ?? TimeProvider.System;
        _credentials = new NatsCredentials(options);
        foreach (var url in options.Servers)
        {
            _servers.Add(NatsServerAddress.Parse(url));
        }

        if (options.RandomizeServers && _servers.Count > 1)
        {
            var shuffled = _servers.ToArray();
            Random.Shared.Shuffle(shuffled);
            _servers.Clear();
            _servers.AddRange(shuffled);
        }

        var pause = (long)options.ReconnectBufferBytes + (16 * 1024 * 1024);
        _outbound = new Pipe(new PipeOptions(
            pauseWriterThreshold: pause,
            resumeWriterThreshold: pause / 2,
            minimumSegmentSize: 64 * 1024,
            useSynchronizationContext: false));
        _inboxPrefix = options.InboxPrefix + "." + Nuid.Next() + ".";
    }

    /// <summary>Raised after every state change, on a thread-pool thread; handlers must not block.</summary>
    public event EventHandler<NatsConnectionStateChangedEventArgs>? StateChanged;

    /// <summary>Raised after a reconnect, once subscriptions are re-established.</summary>
    internal event Action? Reconnected;

    public NatsConnectionState State => _state;

    public NatsConnectionOptions Options => _options;

    public TimeProvider TimeProvider => _timeProvider;

    public ILogger Logger => _logger;

    /// <summary>Live subscriptions, the shared request inbox included (diagnostics).</summary>
    internal int SubscriptionCount => _subscriptions.Count;

    /// <summary>The latest INFO from the server.</summary>
    public ServerInfo ServerInfo => Volatile.Read(ref _info);

    /// <summary>The server currently connected to, if any.</summary>
    public string? ConnectedUrl => _currentServer?.ToString();

    /// <summary>Every server known: configured plus those the cluster announced.</summary>
    public IReadOnlyList<string> KnownServers
    {
        get
        {
            lock (_servers)
            {
                return _servers.Select(s => s.ToString()).ToArray();
            }
        }
    }

    /// <summary>Connects to the first reachable server.</summary>
    /// <exception cref="NatsAuthenticationException">The credentials or TLS were rejected.</exception>
    /// <exception cref="NatsConnectionException">No server could be reached.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default)
    {
        lock (_stateLock)
        {
            if (_state != NatsConnectionState.Disconnected)
            {
                throw new InvalidOperationException($"ConnectAsync was already called (state {_state}).");
            }
        }

        SetState(NatsConnectionState.Connecting);
        var failures = new List<Exception>();
        foreach (var server in _servers.ToArray())
        {
            try
            {
                var transport = await ConnectTransportAsync(server, cancellationToken).ConfigureAwait(false);
                _lifecycle = Task.Run(() => RunAsync(transport), CancellationToken.None);
                await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (NatsAuthenticationException)
            {
                SetState(NatsConnectionState.Closed);
                throw;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                SetState(NatsConnectionState.Closed);
                throw;
            }
            catch (Exception ex)
            {
                LogConnectFailed(_logger, server.ToString(), ex.Message);
                failures.Add(ex);
            }
        }

        SetState(NatsConnectionState.Closed);
        throw new NatsConnectionException(
            $"Could not connect to any of {_servers.Count} NATS server(s) ({string.Join(", ", _servers)}): {string.Join("; ", failures.Select(f => f.Message))}",
            new AggregateException(failures));
    }

    /// <summary>Publishes a message.</summary>
    /// <remarks>While reconnecting, the message goes to the reconnect buffer (see <see cref="NatsConnectionOptions"/>).</remarks>
    /// <exception cref="NatsMaxPayloadExceededException">Headers plus payload exceed the server's max_payload; nothing was sent.</exception>
    /// <exception cref="NatsReconnectBufferFullException">Disconnected, and the reconnect buffer stayed full; nothing was sent.</exception>
    public ValueTask PublishAsync(string subject, ReadOnlyMemory<byte> payload, NatsHeaders? headers = null, string? replyTo = null, CancellationToken cancellationToken = default)
        => PublishAsync(subject, new ReadOnlySequence<byte>(payload), headers, replyTo, cancellationToken);

    /// <inheritdoc cref="PublishAsync(string, ReadOnlyMemory{byte}, NatsHeaders?, string?, CancellationToken)"/>
    public async ValueTask PublishAsync(string subject, ReadOnlySequence<byte> payload, NatsHeaders? headers = null, string? replyTo = null, CancellationToken cancellationToken = default)
    {
        // A publisher usually repeats one subject string: validated once, not per message (strings are immutable).
        if (!ReferenceEquals(subject, _lastValidSubject))
        {
            NatsProtocolWriter.ValidateSubject(subject, nameof(subject), allowWildcards: false);
            _lastValidSubject = subject;
        }

        if (replyTo is not null)
        {
            NatsProtocolWriter.ValidateSubject(replyTo, nameof(replyTo), allowWildcards: false);
        }

        var size = (headers?.GetByteCount() ?? 0) + payload.Length;
        var max = ServerInfo.MaxPayload;
        if (max > 0 && size > max)
        {
            throw new NatsMaxPayloadExceededException(subject, size, max);
        }

        await EnterWriteAsync(size + subject.Length + 64, cancellationToken).ConfigureAwait(false);
        try
        {
            NatsProtocolWriter.WritePublish(_outbound.Writer, subject, replyTo, headers, payload);
        }
        finally
        {
            await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
        }

        NatsTelemetry.MessagesSent.Add(1);
    }

    /// <summary>
    /// Writes the operations <paramref name="write"/> produces as one unit: one write lock, one hand-off to the socket
    /// pump, however many operations (a batch of acks goes out together).
    /// </summary>
    /// <remarks>Nothing is validated: for subjects the server gave us (ack reply subjects) and bodies of known size.
    /// <paramref name="size"/> is what the reconnect buffer is charged while disconnected; the reconnect rules are those
    /// of <see cref="PublishAsync(string, ReadOnlySequence{byte}, NatsHeaders?, string?, CancellationToken)"/>.
    /// Completes synchronously, without allocating, while connected and the outbound pipe has room.</remarks>
    /// <exception cref="NatsReconnectBufferFullException">Disconnected, and the reconnect buffer stayed full; nothing was written.</exception>
    /// <exception cref="NatsConnectionException">The connection is closed; nothing was written.</exception>
    internal async ValueTask WriteAsync<TState>(long size, int messages, TState state, Action<IBufferWriter<byte>, TState> write, CancellationToken cancellationToken = default)
    {
        await EnterWriteAsync(size, cancellationToken).ConfigureAwait(false);
        try
        {
            write(_outbound.Writer, state);
        }
        finally
        {
            await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
        }

        NatsTelemetry.MessagesSent.Add(messages);
    }

    /// <summary>Subscribes; messages arrive in the subscription's bounded channel.</summary>
    public async ValueTask<NatsSubscription> SubscribeAsync(string subject, string? queueGroup = null, int? capacity = null, CancellationToken cancellationToken = default)
    {
        var subscription = new NatsSubscription(this, subject, queueGroup, capacity ?? _options.SubscriptionCapacity);
        await SubscribeCoreAsync(subscription, cancellationToken).ConfigureAwait(false);
        return subscription;
    }

    /// <summary>Registers any subscription (pull consumers, the request inbox) and sends its SUB.</summary>
    internal async ValueTask SubscribeCoreAsync(NatsSubscriptionBase subscription, CancellationToken cancellationToken)
    {
        NatsProtocolWriter.ValidateSubject(subscription.Subject, "subject", allowWildcards: true);
        if (subscription.QueueGroup is { } queue && (queue.Length == 0 || queue.AsSpan().IndexOfAny(" \t\r\n") >= 0))
        {
            throw new ArgumentException($"Queue group '{queue}' must be non-empty without whitespace.", nameof(subscription));
        }

        subscription.Sid = Interlocked.Increment(ref _nextSid);
        _subscriptions[subscription.Sid] = subscription;
        try
        {
            await EnterWriteAsync(128 + subscription.Subject.Length, cancellationToken).ConfigureAwait(false);
            try
            {
                NatsProtocolWriter.WriteSubscribe(_outbound.Writer, subscription.Subject, subscription.QueueGroup, subscription.Sid);
            }
            finally
            {
                await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch
        {
            _subscriptions.TryRemove(subscription.Sid, out _);
            throw;
        }
    }

    /// <summary>Asks the server to end the subscription after <paramref name="maxMessages"/> in total (UNSUB with max).</summary>
    internal async ValueTask AutoUnsubscribeAsync(NatsSubscriptionBase subscription, long maxMessages, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxMessages, 1);
        subscription.MaxMessages = maxMessages;
        await EnterWriteAsync(64, cancellationToken).ConfigureAwait(false);
        try
        {
            NatsProtocolWriter.WriteUnsubscribe(_outbound.Writer, subscription.Sid, maxMessages);
        }
        finally
        {
            await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (subscription.Received >= maxMessages && _subscriptions.TryRemove(subscription.Sid, out _))
        {
            subscription.OnClosed(null);
        }
    }

    /// <summary>Removes a subscription and sends its UNSUB. Idempotent.</summary>
    internal async ValueTask UnsubscribeAsync(NatsSubscriptionBase subscription, CancellationToken cancellationToken = default)
    {
        if (!_subscriptions.TryRemove(subscription.Sid, out _))
        {
            return;
        }

        subscription.OnClosed(null);
        if (State is NatsConnectionState.Closed)
        {
            return;
        }

        try
        {
            await EnterWriteAsync(64, cancellationToken).ConfigureAwait(false);
            try
            {
                NatsProtocolWriter.WriteUnsubscribe(_outbound.Writer, subscription.Sid, null);
            }
            finally
            {
                await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (NatsConnectionException)
        {
            // Closed meanwhile: the server forgot the subscription with the connection.
        }
    }

    /// <summary>Sends a request and waits for the first reply, through one shared inbox subscription.</summary>
    /// <exception cref="NatsNoRespondersException">Nobody subscribes to <paramref name="subject"/>.</exception>
    /// <exception cref="NatsTimeoutException">No reply within <paramref name="timeout"/> (default <see cref="NatsConnectionOptions.RequestTimeout"/>).</exception>
    public async Task<NatsMsg> RequestAsync(string subject, ReadOnlyMemory<byte> payload, NatsHeaders? headers = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        await EnsureInboxAsync(cancellationToken).ConfigureAwait(false);
        var id = Interlocked.Increment(ref _nextRequestId);
        var reply = new TaskCompletionSource<NatsMsg>(TaskCreationOptions.RunContinuationsAsynchronously);
        _requests[id] = reply;
        var wait = timeout ?? _options.RequestTimeout;
        try
        {
            await PublishAsync(subject, payload, headers, _inboxPrefix + id.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
            return await reply.Task.WaitAsync(wait, _timeProvider, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new NatsTimeoutException($"No reply to the request on '{subject}' within {wait.TotalMilliseconds:0} ms.");
        }
        finally
        {
            _requests.TryRemove(id, out _);
        }
    }

    /// <summary>Waits until the server has processed everything written so far (PING/PONG round trip).</summary>
    /// <exception cref="NatsConnectionException">The connection was lost or closed before the PONG.</exception>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        var pong = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await SendPingAsync(pong, cancellationToken).ConfigureAwait(false);
        await pong.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends every subscription without losing a message the server already sent, then closes.</summary>
    /// <remarks>
    /// <para>Order: an UNSUB for every subscription (they stay registered), then a flush (PING/PONG): the server sends
    /// nothing for a subscription after its UNSUB and answers the PING after it, and the read loop hands messages over
    /// in order, so when the PONG arrives every message sent before the UNSUB has been delivered to its subscription.
    /// Only then are the subscriptions completed (their readers still get everything delivered) and the connection
    /// closed. A subscription whose buffer is full still drops, as always (see <see cref="NatsSubscription"/>).</para>
    /// <para>If the connection is lost or <paramref name="cancellationToken"/> fires before the PONG, the
    /// subscriptions are completed and the connection closed anyway, and the error is thrown: messages still in
    /// flight may then be missing. Called while not connected, it completes the subscriptions and closes at once.</para>
    /// </remarks>
    /// <exception cref="NatsConnectionException">The connection was lost during the drain (it is closed all the same).</exception>
    public async Task DrainAsync(CancellationToken cancellationToken = default)
    {
        var draining = _subscriptions.Values.OrderBy(s => s.Sid).ToArray();
        try
        {
            // Not connected (never, or reconnecting): nothing is in flight from the server to wait for.
            if (State is NatsConnectionState.Connected)
            {
                if (draining.Length > 0)
                {
                    await EnterWriteAsync(32L * draining.Length, cancellationToken).ConfigureAwait(false);
                    try
                    {
                        foreach (var subscription in draining)
                        {
                            NatsProtocolWriter.WriteUnsubscribe(_outbound.Writer, subscription.Sid, null);
                        }
                    }
                    finally
                    {
                        await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
                    }
                }

                // The PING must not wait for a reconnect: a connection lost now cannot deliver what was in flight.
                using var lost = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                void OnStateChanged(object? sender, NatsConnectionStateChangedEventArgs e)
                {
                    if (e.Current is not NatsConnectionState.Connected)
                    {
                        try
                        {
                            lost.Cancel();
                        }
                        catch (ObjectDisposedException)
                        {
                            // State changes are raised on the pool: this one arrived after the drain had ended.
                        }
                    }
                }

                StateChanged += OnStateChanged;
                try
                {
                    if (State is not NatsConnectionState.Connected)
                    {
                        lost.Cancel();
                    }

                    await FlushAsync(lost.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new NatsConnectionException("The connection was lost while draining; messages still in flight may be missing.");
                }
                finally
                {
                    StateChanged -= OnStateChanged;
                }
            }
        }
        finally
        {
            foreach (var subscription in draining)
            {
                if (_subscriptions.TryRemove(subscription.Sid, out _))
                {
                    subscription.OnClosed(null);
                }
            }

            await CloseAsync(null).ConfigureAwait(false);
        }
    }

    /// <summary>Flushes what is pending (briefly, when connected) and closes.</summary>
    public async ValueTask DisposeAsync()
    {
        if (State == NatsConnectionState.Connected)
        {
            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2), _timeProvider);
                await FlushAsync(cts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or NatsException)
            {
                // Best effort: closing anyway.
            }
        }

        await CloseAsync(null).ConfigureAwait(false);

        // _writeLock and _disposeCts are left to the GC: a publisher racing dispose must get NatsConnectionException,
        // not ObjectDisposedException (neither holds an OS handle here).
    }

    /// <summary>Waits for the connection to be (re)established.</summary>
    public Task WaitConnectedAsync(CancellationToken cancellationToken = default)
    {
        Task signal;
        lock (_stateLock)
        {
            if (_state == NatsConnectionState.Closed)
            {
                throw ClosedException();
            }

            signal = _connectedSignal.Task;
        }

        return signal.WaitAsync(cancellationToken);
    }

    internal void ReportSlowConsumer(NatsSubscriptionBase subscription, long dropped)
    {
        if (dropped == 1 || dropped % 10_000 == 0)
        {
            LogSlowConsumer(_logger, subscription.Subject, subscription.Sid, dropped);
        }
    }

    // ---------- writing ----------

    private ValueTask EnterWriteAsync(long size, CancellationToken cancellationToken)
    {
        // Fast path (connected, lock free): no state lock, no async machinery.
        if (_state == NatsConnectionState.Connected && _writeLock.Wait(0, CancellationToken.None))
        {
            if (_state != NatsConnectionState.Connected)
            {
                Interlocked.Add(ref _bufferedWhileDisconnected, size);
            }

            return ValueTask.CompletedTask;
        }

        return EnterWriteSlowAsync(size, cancellationToken);
    }

    private async ValueTask EnterWriteSlowAsync(long size, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task connected;
            lock (_stateLock)
            {
                if (_state == NatsConnectionState.Closed)
                {
                    throw ClosedException();
                }

                if (_state == NatsConnectionState.Disconnected || _state == NatsConnectionState.Connecting)
                {
                    throw new NatsConnectionException("The connection is not open yet: call ConnectAsync first.");
                }

                if (_state == NatsConnectionState.Connected || Interlocked.Read(ref _bufferedWhileDisconnected) + size <= _options.ReconnectBufferBytes)
                {
                    break;
                }

                connected = _connectedSignal.Task;
            }

            try
            {
                await connected.WaitAsync(_options.ReconnectBufferTimeout, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw new NatsReconnectBufferFullException(
                    $"The connection has been down and the reconnect buffer ({_options.ReconnectBufferBytes} bytes) stayed full for " +
                    $"{_options.ReconnectBufferTimeout.TotalSeconds:0.###} s; this message ({size} bytes) was NOT sent.");
            }
        }

        if (!_writeLock.Wait(0, CancellationToken.None))
        {
            await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_state != NatsConnectionState.Connected)
        {
            Interlocked.Add(ref _bufferedWhileDisconnected, size);
        }
    }

    private async ValueTask ExitWriteAsync(CancellationToken cancellationToken)
    {
        try
        {
            var flush = _outbound.Writer.FlushAsync(cancellationToken);
            if (!flush.IsCompletedSuccessfully)
            {
                await flush.ConfigureAwait(false);
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes a PING whose PONG completes <paramref name="pong"/> (null: a keep-alive).</summary>
    private async ValueTask SendPingAsync(TaskCompletionSource? pong, CancellationToken cancellationToken)
    {
        if (pong is not null)
        {
            // A PING is only written while connected, so every PING in the backlog at a disconnect has a waiter
            // that the disconnect failed; the pump drops those stale PINGs on reconnect.
            await WaitConnectedAsync(cancellationToken).ConfigureAwait(false);
        }

        await EnterWriteAsync(8, cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_stateLock)
            {
                if (_state != NatsConnectionState.Connected)
                {
                    pong?.TrySetException(new NatsConnectionException("The connection was lost before the flush's PONG arrived; the server may not have received everything."));
                    return;
                }

                _pongWaiters.Enqueue(pong);
            }

            NatsProtocolWriter.WritePing(_outbound.Writer);
        }
        finally
        {
            await ExitWriteAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task SendPongAsync()
    {
        try
        {
            await EnterWriteAsync(8, CancellationToken.None).ConfigureAwait(false);
            try
            {
                NatsProtocolWriter.WritePong(_outbound.Writer);
            }
            finally
            {
                await ExitWriteAsync(CancellationToken.None).ConfigureAwait(false);
            }

            Interlocked.Increment(ref _serverPingsAnswered);
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException or InvalidOperationException)
        {
            // Closed or buffer full: the server will ping again.
        }
    }

    /// <summary>Sends a keep-alive without making the ping loop wait: a stalled socket must not stop stale detection.</summary>
    private async Task SendKeepAliveAsync(CancellationToken cancellationToken)
    {
        try
        {
            await SendPingAsync(null, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is NatsException or OperationCanceledException or InvalidOperationException)
        {
            // The transport is going down; the ping loop or the read loop reports why.
        }
    }

    // ---------- inbox ----------

    private Task EnsureInboxAsync(CancellationToken cancellationToken)
    {
        var existing = Volatile.Read(ref _inboxSubscribed);
        if (existing is { IsCompletedSuccessfully: true })
        {
            return existing;
        }

        lock (_requests)
        {
            if (_inboxSubscribed is null || _inboxSubscribed.IsFaulted || _inboxSubscribed.IsCanceled)
            {
                _inboxSubscribed = SubscribeCoreAsync(new InboxSubscription(this, _inboxPrefix + "*"), CancellationToken.None).AsTask();
            }

            return _inboxSubscribed.WaitAsync(cancellationToken);
        }
    }

    private void OnInboxReply(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
    {
        var dot = subject.LastIndexOf((byte)'.');
        if (dot < 0 || !Utf8Parser.TryParse(subject[(dot + 1)..], out long id, out var consumed) || consumed != subject.Length - dot - 1)
        {
            return;
        }

        if (!_requests.TryRemove(id, out var waiter))
        {
            return; // Late reply after a timeout: nobody waits for it.
        }

        var msg = NatsSubscriptionBase.Materialize(subject, replyTo, headers, payload);
        if (msg.Headers is { StatusCode: 503 } && msg.Data.Length == 0)
        {
            waiter.TrySetException(new NatsNoRespondersException("No responders: nobody subscribes to the request's subject (status 503)."));
        }
        else
        {
            waiter.TrySetResult(msg);
        }
    }

    private sealed class InboxSubscription(NatsConnection connection, string subject) : NatsSubscriptionBase(subject, null)
    {
        internal override void OnMessage(ReadOnlySpan<byte> subject, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
            => connection.OnInboxReply(subject, replyTo, headers, payload);

        internal override void OnClosed(Exception? error)
        {
        }
    }

    // ---------- state ----------

    private void SetState(NatsConnectionState state)
    {
        NatsConnectionState previous;
        lock (_stateLock)
        {
            previous = _state;
            if (previous == state || previous == NatsConnectionState.Closed)
            {
                return;
            }

            _state = state;
            if (state == NatsConnectionState.Connected)
            {
                Interlocked.Exchange(ref _bufferedWhileDisconnected, 0);
                _connectedSignal.TrySetResult();
            }
            else if (previous == NatsConnectionState.Connected)
            {
                _connectedSignal = NewSignal();
                var lost = new NatsConnectionException("The connection was lost before the flush's PONG arrived; the server may not have received everything.");
                while (_pongWaiters.TryDequeue(out var waiter))
                {
                    waiter?.TrySetException(lost);
                }
            }

            if (state == NatsConnectionState.Closed)
            {
                var closed = ClosedException();
                _connectedSignal.TrySetException(closed);
                while (_pongWaiters.TryDequeue(out var waiter))
                {
                    waiter?.TrySetException(closed);
                }
            }
        }

        LogStateChanged(_logger, previous, state, _currentServer?.ToString() ?? "-");
        var handler = StateChanged;
        if (handler is not null)
        {
            var args = new NatsConnectionStateChangedEventArgs(previous, state);
            ThreadPool.QueueUserWorkItem(_ => handler(this, args));
        }
    }

    private NatsConnectionException ClosedException()
        => _closeError is null
            ? new NatsConnectionException("The NATS connection is closed.")
            : new NatsConnectionException("The NATS connection is closed: " + _closeError.Message, _closeError);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task CloseAsync(Exception? error)
    {
        if (State == NatsConnectionState.Closed)
        {
            return;
        }

        _closeError = error;
        SetState(NatsConnectionState.Closed);
        await _disposeCts.CancelAsync().ConfigureAwait(false);
        if (_lifecycle is not null)
        {
            try
            {
                await _lifecycle.ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                LogLoopEnded(_logger, ex.Message);
            }
        }

        foreach (var subscription in _subscriptions.Values)
        {
            subscription.OnClosed(error is null ? null : ClosedException());
        }

        _subscriptions.Clear();
        foreach (var request in _requests.Values)
        {
            request.TrySetException(ClosedException());
        }

        // Only the reader side completes: a writer blocked on a full pipe is released (its flush reports completion)
        // and later writers are refused by the Closed state, instead of tripping over a completed writer mid-write.
        await _outbound.Reader.CompleteAsync().ConfigureAwait(false);
    }

    // ---------- lifecycle ----------

    private async Task RunAsync(Transport transport)
    {
        var stopping = _disposeCts.Token;
        var reconnected = false;
        while (!stopping.IsCancellationRequested)
        {
            var failure = await RunTransportAsync(transport, reconnected).ConfigureAwait(false);
            if (stopping.IsCancellationRequested)
            {
                break;
            }

            NatsTelemetry.Disconnects.Add(1);
            LogDisconnected(_logger, transport.Address.ToString(), failure?.Message ?? "closed");
            SetState(NatsConnectionState.Reconnecting);
            var next = await ReconnectAsync(transport.Address, stopping).ConfigureAwait(false);
            if (next is null)
            {
                if (!stopping.IsCancellationRequested)
                {
                    _ = CloseAsync(new NatsConnectionException($"Gave up reconnecting after {_options.MaxReconnectAttempts} attempt(s) per server.", failure ?? new IOException("connection lost")));
                }

                return;
            }

            transport = next;
            reconnected = true;
        }
    }

    private async Task<Exception?> RunTransportAsync(Transport transport, bool reconnected)
    {
        _currentServer = transport.Address;
        Interlocked.Exchange(ref _pingsOut, 0);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_disposeCts.Token);
        var token = cts.Token;
        Exception? failure = null;
        var pump = PumpAsync(transport.Stream, reconnected, token);
        var read = ReadLoopAsync(transport.Reader, token);
        var ping = PingLoopAsync(token);

        var first = await Task.WhenAny(pump, read, ping).ConfigureAwait(false);
        try
        {
            await first.ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        // Leave Connected before the socket goes so no new PING enters the backlog unanswered.
        if (State == NatsConnectionState.Connected)
        {
            SetState(NatsConnectionState.Reconnecting);
        }

        await cts.CancelAsync().ConfigureAwait(false);
        await transport.DisposeAsync().ConfigureAwait(false);
        foreach (var task in new[] { pump, read, ping })
        {
            try
            {
                await task.ConfigureAwait(false);
            }
            catch
            {
                // Already reported through the first failure.
            }
        }

        return failure;
    }

    private async Task<Transport?> ReconnectAsync(NatsServerAddress lost, CancellationToken stopping)
    {
        var attempts = new Dictionary<NatsServerAddress, int>();
        for (var round = 0; !stopping.IsCancellationRequested; round++)
        {
            if (round > 0)
            {
                var wait = ReconnectDelay(round, _options, Random.Shared);
                try
                {
                    await Task.Delay(wait, _timeProvider, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
            }

            NatsServerAddress[] servers;
            lock (_servers)
            {
                // Try the other servers first (shuffled unless disabled); the one just lost last.
                var others = _servers.Where(s => s != lost).ToArray();
                if (_options.RandomizeServers)
                {
                    Random.Shared.Shuffle(others);
                }

                servers = others.Append(lost).Distinct().ToArray();
            }

            var tried = 0;
            foreach (var server in servers)
            {
                attempts.TryGetValue(server, out var count);
                if (_options.MaxReconnectAttempts >= 0 && count >= _options.MaxReconnectAttempts)
                {
                    continue;
                }

                attempts[server] = count + 1;
                tried++;
                try
                {
                    LogReconnecting(_logger, server.ToString(), count + 1);
                    return await ConnectTransportAsync(server, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    return null;
                }
                catch (Exception ex)
                {
                    LogConnectFailed(_logger, server.ToString(), ex.Message);
                }
            }

            if (tried == 0)
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>Most rounds the reconnect wait doubles for: it grows to <see cref="MaxBackoffFactor"/> × the base.</summary>
    internal const int MaxBackoffFactor = 8;

    /// <summary>The longest wait a timer takes (~49.7 days); a reconnect delay never exceeds it.</summary>
    internal static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>
    /// The wait before reconnect round <paramref name="round"/> (0 is the first round, right after the loss: no wait).
    /// </summary>
    /// <remarks>Round <c>k ≥ 1</c> waits <c>ReconnectWait × min(2^(k-1), 8)</c> plus a random extra in
    /// <c>[0, ReconnectJitter)</c> drawn from <paramref name="random"/>, so clients that lost the same server do not
    /// come back in step; the total is capped at <see cref="MaxReconnectDelay"/>.</remarks>
    internal static TimeSpan ReconnectDelay(int round, NatsConnectionOptions options, Random random)
    {
        if (round <= 0)
        {
            return TimeSpan.Zero;
        }

        var factor = round > 3 ? MaxBackoffFactor : 1 << (round - 1);
        var jitter = (long)(options.ReconnectJitter.Ticks * random.NextDouble()); // truncated: always below the jitter
        var ticks = ((double)options.ReconnectWait.Ticks * factor) + jitter;
        return ticks >= MaxReconnectDelay.Ticks ? MaxReconnectDelay : TimeSpan.FromTicks((options.ReconnectWait.Ticks * factor) + jitter);
    }

    private async Task PumpAsync(Stream stream, bool reconnected, CancellationToken cancellationToken)
    {
        var reader = _outbound.Reader;
        if (reader.TryRead(out var backlog))
        {
            var buffer = backlog.Buffer;
            try
            {
                await OutboundBacklog.WriteWithoutPingsAsync(buffer, stream, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                reader.AdvanceTo(buffer.End);
            }
            catch
            {
                reader.AdvanceTo(buffer.Start);
                throw;
            }
        }

        SetState(NatsConnectionState.Connected);
        if (reconnected)
        {
            // Subscriptions are back and the state is Connected: pull consumers can re-issue their pulls at once.
            NatsTelemetry.Reconnects.Add(1);
            Interlocked.Increment(ref _reconnects);
            Reconnected?.Invoke();
        }

        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            try
            {
                foreach (var segment in buffer)
                {
                    await stream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
                }

                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Keep everything: it starts at an operation boundary and goes out again after the reconnect.
                reader.AdvanceTo(buffer.Start);
                throw;
            }

            reader.AdvanceTo(buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private async Task ReadLoopAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            SequencePosition consumed;
            try
            {
                consumed = _parser.Parse(buffer, this);
            }
            catch
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                throw;
            }

            reader.AdvanceTo(consumed, buffer.End);
            if (result.IsCompleted)
            {
                throw new IOException("The server closed the connection.");
            }
        }
    }

    private async Task PingLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_options.PingInterval, _timeProvider);
        while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false))
        {
            if (State != NatsConnectionState.Connected)
            {
                continue;
            }

            var outstanding = Interlocked.Increment(ref _pingsOut);
            if (outstanding > _options.MaxPingsOut)
            {
                LogStale(_logger, outstanding - 1);
                throw new NatsConnectionException($"Stale connection: {outstanding - 1} PING(s) unanswered.");
            }

            _ = SendKeepAliveAsync(cancellationToken);
        }
    }

    // ---------- protocol handler (read loop) ----------

    void INatsProtocolHandler.OnInfo(ReadOnlySpan<byte> json) => ApplyInfo(JsonSerializer.Deserialize(json, ProtocolJsonContext.Default.ServerInfo)!);

    void INatsProtocolHandler.OnMsg(ReadOnlySpan<byte> subject, long sid, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
    {
        NatsTelemetry.MessagesReceived.Add(1);
        if (!_subscriptions.TryGetValue(sid, out var subscription))
        {
            return; // Unsubscribed meanwhile.
        }

        if (!subscription.CountDelivery())
        {
            return;
        }

        try
        {
            subscription.OnMessage(subject, replyTo, headers, payload);
        }
        catch (Exception ex)
        {
            // One bad message (or subscriber bug) must not take the connection, and every other subscription, down.
            LogDeliveryFailed(_logger, subscription.Subject, subscription.Sid, ex.Message);
        }

        if (subscription.MaxMessages is { } max && subscription.Received >= max)
        {
            _subscriptions.TryRemove(sid, out _);
            subscription.OnClosed(null);
        }
    }

    void INatsProtocolHandler.OnPing() => _ = SendPongAsync();

    /// <summary>PONGs written in answer to the server's PINGs (diagnostics, tests).</summary>
    internal long ServerPingsAnswered => Interlocked.Read(ref _serverPingsAnswered);

    /// <summary>-ERR messages received after the handshake (diagnostics, tests).</summary>
    internal long ServerErrors => Interlocked.Read(ref _serverErrors);

    /// <summary>Times the connection was re-established after being lost (diagnostics, tests).</summary>
    internal long ReconnectCount => Interlocked.Read(ref _reconnects);

    void INatsProtocolHandler.OnPong()
    {
        Interlocked.Exchange(ref _pingsOut, 0);
        TaskCompletionSource? waiter = null;
        lock (_stateLock)
        {
            _pongWaiters.TryDequeue(out waiter);
        }

        waiter?.TrySetResult();
    }

    void INatsProtocolHandler.OnOk()
    {
    }

    void INatsProtocolHandler.OnError(string message)
    {
        LogServerError(_logger, message);
        Interlocked.Increment(ref _serverErrors);
        if (!IsConnectionFatal(message))
        {
            return; // The server keeps the connection; the operation just did not happen.
        }

        throw new NatsProtocolException($"Server error: {message}");
    }

    /// <summary>
    /// Whether a -ERR after the handshake ends the connection (the read loop fails and the client reconnects).
    /// </summary>
    /// <remarks>The server keeps the connection after a refused operation: a permissions violation (publish or
    /// subscription), an invalid subject, or too many subscriptions; the operation just did not happen. Every other
    /// -ERR (stale connection, maximum payload, parser error, unknown operation, authorization, slow consumer...) comes
    /// before the server closes the connection, so the client reconnects at once.</remarks>
    internal static bool IsConnectionFatal(string message)
    {
        var text = message.AsSpan().Trim().Trim('\'');
        return !(text.StartsWith("Permissions Violation", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("Invalid Subject", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("Invalid Publish Subject", StringComparison.OrdinalIgnoreCase)
            || text.StartsWith("Maximum Subscriptions Exceeded", StringComparison.OrdinalIgnoreCase));
    }

    private void ApplyInfo(ServerInfo info)
    {
        Volatile.Write(ref _info, info);
        if (info.LameDuckMode)
        {
            LogLameDuck(_logger, _currentServer?.ToString() ?? "-");
        }

        if (info.ConnectUrls is { Length: > 0 } urls)
        {
            lock (_servers)
            {
                foreach (var url in urls)
                {
                    if (NatsServerAddress.TryParse(url, out var address, out _) && !_servers.Contains(address!))
                    {
                        _servers.Add(address! with { Tls = _servers[0].Tls });
                    }
                }
            }
        }
    }

    // ---------- handshake ----------

    private async Task<Transport> ConnectTransportAsync(NatsServerAddress server, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(_options.ConnectTimeout, _timeProvider);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        var token = timeout.Token;
        var tcp = new TcpClient { NoDelay = true };
        Stream? stream = null;
        try
        {
            try
            {
                await tcp.ConnectAsync(server.Host, server.Port, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new NatsConnectionException($"Timed out connecting to {server} after {_options.ConnectTimeout.TotalSeconds:0.###} s.");
            }

            stream = tcp.GetStream();
            var info = await ReadInfoAsync(stream, token).ConfigureAwait(false);
            var useTls = info.TlsRequired || server.Tls || _options.Tls.Required;
            if (useTls)
            {
                if (!info.TlsRequired && !info.TlsAvailable)
                {
                    throw new NatsAuthenticationException($"TLS is required by the options, but {server} does not offer TLS.");
                }

                stream = await UpgradeToTlsAsync(stream, server, token).ConfigureAwait(false);
            }

            var connect = new ConnectOptions
            {
                Name = _options.Name,
                TlsRequired = useTls,
                Version = typeof(NatsConnection).Assembly.GetName().Version?.ToString(3) ?? "0.1.0",
            };
            _credentials.Apply(connect, info.Nonce);
            var json = JsonSerializer.SerializeToUtf8Bytes(connect, ProtocolJsonContext.Default.ConnectOptions);
            var hello = new ArrayBufferWriter<byte>(json.Length + 32);
            NatsProtocolWriter.WriteConnect(hello, json);
            NatsProtocolWriter.WritePing(hello);
            await stream.WriteAsync(hello.WrittenMemory, token).ConfigureAwait(false);
            await stream.FlushAsync(token).ConfigureAwait(false);

            var reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true));
            var handshake = new HandshakeHandler();
            while (!handshake.Pong)
            {
                var result = await reader.ReadAsync(token).ConfigureAwait(false);
                var consumed = _parser.Parse(result.Buffer, handshake);
                reader.AdvanceTo(consumed, result.Buffer.End);
                if (handshake.Error is { } error)
                {
                    if (error.Contains("Authorization", StringComparison.OrdinalIgnoreCase) || error.Contains("Authentication", StringComparison.OrdinalIgnoreCase))
                    {
                        throw new NatsAuthenticationException($"{server} rejected the credentials: {error}.");
                    }

                    throw new NatsProtocolException($"{server} refused the connection: {error}.");
                }

                if (result.IsCompleted && !handshake.Pong)
                {
                    throw new NatsConnectionException($"{server} closed the connection during the handshake.");
                }
            }

            ApplyInfo(handshake.Info ?? info);

            // Re-establish subscriptions before anything else is sent (the backlog may publish to them).
            var subs = new ArrayBufferWriter<byte>();
            foreach (var subscription in _subscriptions.Values.OrderBy(s => s.Sid))
            {
                NatsProtocolWriter.WriteSubscribe(subs, subscription.Subject, subscription.QueueGroup, subscription.Sid);
                if (subscription.MaxMessages is { } max)
                {
                    NatsProtocolWriter.WriteUnsubscribe(subs, subscription.Sid, Math.Max(0, max - subscription.Received));
                }
            }

            if (subs.WrittenCount > 0)
            {
                await stream.WriteAsync(subs.WrittenMemory, token).ConfigureAwait(false);
                await stream.FlushAsync(token).ConfigureAwait(false);
            }

            LogConnected(_logger, server.ToString(), info.ServerId ?? "-", info.Version ?? "-", useTls);
            return new Transport(server, tcp, stream, reader);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Dispose(tcp, stream);
            throw new NatsConnectionException($"Timed out in the handshake with {server} after {_options.ConnectTimeout.TotalSeconds:0.###} s.");
        }
        catch
        {
            Dispose(tcp, stream);
            throw;
        }

        static void Dispose(TcpClient tcp, Stream? stream)
        {
            stream?.Dispose();
            tcp.Dispose();
        }
    }

    /// <summary>Reads the INFO line byte by byte: nothing beyond it may be consumed before a TLS upgrade.</summary>
    private static async Task<ServerInfo> ReadInfoAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length >= NatsProtocolParser.MaxControlLine)
                {
                    throw new NatsProtocolException("The server's INFO line is too long.");
                }

                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var read = await stream.ReadAsync(buffer.AsMemory(length, 1), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new NatsConnectionException("The server closed the connection before sending INFO.");
            }

            length++;
            if (length >= 2 && buffer[length - 2] == '\r' && buffer[length - 1] == '\n')
            {
                break;
            }
        }

        var line = buffer.AsSpan(0, length - 2);
        if (!line.StartsWith("INFO "u8))
        {
            throw new NatsProtocolException($"Expected INFO from the server, got '{NatsProtocolParser.Printable(line)}'.");
        }

        return JsonSerializer.Deserialize(line[5..], ProtocolJsonContext.Default.ServerInfo)
            ?? throw new NatsProtocolException("The server's INFO is empty.");
    }

    private async Task<Stream> UpgradeToTlsAsync(Stream inner, NatsServerAddress server, CancellationToken cancellationToken)
    {
        var tls = _options.Tls;
        X509Certificate2Collection? trust = null;
        if (tls.CaFile is not null)
        {
            trust = [];
            trust.ImportFromPemFile(tls.CaFile);
        }

        var ssl = new SslStream(inner, leaveInnerStreamOpen: false, (_, certificate, chain, errors) => ValidateServerCertificate(certificate, errors, trust));
        var authentication = new SslClientAuthenticationOptions
        {
            TargetHost = server.Host,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        if (tls.CertFile is not null && tls.KeyFile is not null)
        {
            using var pem = X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);
            // Re-import so the key is usable by SslStream on every platform.
            var certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
            authentication.ClientCertificates = [certificate];
        }

        try
        {
            await ssl.AuthenticateAsClientAsync(authentication, cancellationToken).ConfigureAwait(false);
        }
        catch (AuthenticationException ex)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new NatsAuthenticationException($"TLS handshake with {server} failed: {ex.Message}", ex);
        }
        catch (IOException ex)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            throw new NatsAuthenticationException($"TLS handshake with {server} failed (the server may require a client certificate): {ex.Message}", ex);
        }

        return ssl;
    }

    private bool ValidateServerCertificate(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection? trust)
    {
        if (_options.Tls.InsecureSkipVerify)
        {
            return true;
        }

        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            LogTlsRejected(_logger, errors.ToString());
            return false;
        }

        if (trust is null)
        {
            return errors == SslPolicyErrors.None;
        }

        // Custom CA: trust only the given roots, whatever the system store says.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        var ok = chain.Build(leaf);
        if (!ok)
        {
            LogTlsRejected(_logger, string.Join(", ", chain.ChainStatus.Select(s => s.Status)));
        }

        return ok;
    }

    private sealed class HandshakeHandler : INatsProtocolHandler
    {
        public bool Pong { get; private set; }

        public string? Error { get; private set; }

        public ServerInfo? Info { get; private set; }

        public void OnInfo(ReadOnlySpan<byte> json) => Info = JsonSerializer.Deserialize(json, ProtocolJsonContext.Default.ServerInfo);

        public void OnMsg(ReadOnlySpan<byte> subject, long sid, ReadOnlySpan<byte> replyTo, in ReadOnlySequence<byte> headers, in ReadOnlySequence<byte> payload)
        {
        }

        public void OnPing()
        {
        }

        public void OnPong() => Pong = true;

        public void OnOk()
        {
        }

        public void OnError(string message) => Error ??= message;
    }

    private sealed class Transport(NatsServerAddress address, TcpClient tcp, Stream stream, PipeReader reader) : IAsyncDisposable
    {
        public NatsServerAddress Address { get; } = address;

        public Stream Stream { get; } = stream;

        public PipeReader Reader { get; } = reader;

        public async ValueTask DisposeAsync()
        {
            await Reader.CompleteAsync().ConfigureAwait(false);
            await Stream.DisposeAsync().ConfigureAwait(false);
            tcp.Dispose();
        }
    }

    // ---------- logs ----------

    [LoggerMessage(1, LogLevel.Information, "NATS connected to {Server} (server {ServerId}, version {Version}, tls {Tls})")]
    private static partial void LogConnected(ILogger logger, string server, string serverId, string version, bool tls);

    [LoggerMessage(2, LogLevel.Warning, "NATS connect to {Server} failed: {Reason}")]
    private static partial void LogConnectFailed(ILogger logger, string server, string reason);

    [LoggerMessage(3, LogLevel.Warning, "NATS connection to {Server} lost: {Reason}")]
    private static partial void LogDisconnected(ILogger logger, string server, string reason);

    [LoggerMessage(4, LogLevel.Information, "NATS reconnecting to {Server} (attempt {Attempt})")]
    private static partial void LogReconnecting(ILogger logger, string server, int attempt);

    [LoggerMessage(5, LogLevel.Information, "NATS connection state {Previous} -> {State} ({Server})")]
    private static partial void LogStateChanged(ILogger logger, NatsConnectionState previous, NatsConnectionState state, string server);

    [LoggerMessage(6, LogLevel.Warning, "NATS slow consumer on '{Subject}' (sid {Sid}): {Dropped} message(s) dropped so far")]
    private static partial void LogSlowConsumer(ILogger logger, string subject, long sid, long dropped);

    [LoggerMessage(7, LogLevel.Warning, "NATS server error: {Message}")]
    private static partial void LogServerError(ILogger logger, string message);

    [LoggerMessage(8, LogLevel.Warning, "NATS connection stale: {Outstanding} PING(s) unanswered; reconnecting")]
    private static partial void LogStale(ILogger logger, int outstanding);

    [LoggerMessage(9, LogLevel.Warning, "NATS server {Server} entered lame duck mode; will move on when it closes")]
    private static partial void LogLameDuck(ILogger logger, string server);

    [LoggerMessage(10, LogLevel.Warning, "NATS server certificate rejected: {Reason}")]
    private static partial void LogTlsRejected(ILogger logger, string reason);

    [LoggerMessage(12, LogLevel.Error, "NATS message on '{Subject}' (sid {Sid}) could not be delivered and was dropped: {Reason}")]
    private static partial void LogDeliveryFailed(ILogger logger, string subject, long sid, string reason);

    [LoggerMessage(11, LogLevel.Debug, "NATS connection loop ended: {Reason}")]
    private static partial void LogLoopEnded(ILogger logger, string reason);
}

/// <summary>A connection's state change.</summary>
internal sealed class NatsConnectionStateChangedEventArgs(NatsConnectionState previous, NatsConnectionState current) : EventArgs
{
    public NatsConnectionState Previous { get; } = previous;

    public NatsConnectionState Current { get; } = current;
}
