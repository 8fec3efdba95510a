using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Client;

[NonParallelizable]
public class NatsReconnectTests
{
    [Test]
    public async Task ServerSigkilledAndRestarted_PullConsumerContinues_EverySequenceProcessed()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server);
        var js = new JetStreamContext(connection);
        await js.CreateStreamAsync(new StreamConfig { Name = "R", Subjects = ["r.>"], Storage = StorageType.File });
        await js.CreateConsumerAsync("R", new ConsumerConfig { DurableName = "c", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(2) });
        const int published = 1500;
        for (var i = 0; i < published; i++)
        {
            await js.PublishAsync($"r.{i % 5}", Encoding.UTF8.GetBytes(i.ToString()));
        }

        var states = new ConcurrentQueue<NatsConnectionState>();
        connection.StateChanged += (_, e) => states.Enqueue(e.Current);
        long reconnects = 0;
        using var meter = new MeterListener();
        meter.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == NatsTelemetry.MeterName && instrument.Name == "nats.connection.reconnects")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        meter.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref reconnects, value));
        meter.Start();
        await using var consumer = js.CreatePullConsumer("R", "c", new NatsPullConsumerOptions { BatchSize = 100, Expires = TimeSpan.FromSeconds(4), IdleHeartbeat = TimeSpan.FromSeconds(1) });
        await consumer.StartAsync();
        var processed = new HashSet<ulong>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        while (processed.Count < 500)
        {
            var msg = await consumer.NextAsync(cts.Token);
            processed.Add(msg.Metadata.StreamSequence);
            await msg.AckAsync(cts.Token);
        }

        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);
        await server.KillAsync();
        await reconnecting;

        // Published while down: kept in the reconnect buffer and sent after the reconnect.
        const int buffered = 100;
        for (var i = 0; i < buffered; i++)
        {
            await connection.PublishAsync("r.late", Encoding.UTF8.GetBytes("late" + i), cancellationToken: cts.Token);
        }

        var connected = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        await server.RestartAsync();
        await connected;

        while (processed.Count < published + buffered)
        {
            var msg = await consumer.NextAsync(cts.Token);
            processed.Add(msg.Metadata.StreamSequence);
            await msg.AckAsync(cts.Token);
        }

        Assert.That(processed, Is.EquivalentTo(Enumerable.Range(1, published + buffered).Select(i => (ulong)i)));
        Assert.That(states, Does.Contain(NatsConnectionState.Reconnecting).And.Contain(NatsConnectionState.Connected));
        Assert.That(Interlocked.Read(ref reconnects), Is.GreaterThanOrEqualTo(1), "the reconnect is counted on the meter");
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
    }

    [Test]
    public async Task Disconnected_ReconnectBufferFull_PublishFailsWithSpecificExceptionAndBufferedOneArrives()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o =>
        {
            o.ReconnectBufferBytes = 1000;
            o.ReconnectBufferTimeout = TimeSpan.FromMilliseconds(300);
        });
        await using var subscription = await connection.SubscribeAsync("buf.x");
        await Assert.ThrowsAsync<NatsNoRespondersException>(() => connection.RequestAsync("nobody.before", new byte[1]));
        await connection.FlushAsync();

        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);
        await server.KillAsync();
        await reconnecting;
        await connection.PublishAsync("buf.x", new byte[600]);
        var ex = await Assert.ThrowsAsync<NatsReconnectBufferFullException>(async () => await connection.PublishAsync("buf.x", new byte[600]));

        var connected = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        await server.RestartAsync();
        await connected;
        var msg = await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);
        await connection.FlushAsync();

        // The shared request inbox was re-subscribed too: a 503 reaches it (a lost inbox would time out instead).
        await Assert.ThrowsAsync<NatsNoRespondersException>(() => connection.RequestAsync("nobody.after.reconnect", new byte[1]));

        Assert.That(ex!.Message, Does.Contain("NOT sent"));
        Assert.That(msg.Data, Has.Length.EqualTo(600));
        Assert.That(subscription.Messages.Count, Is.Zero, "only the buffered message arrives; the refused one was never sent");
    }

    [Test]
    public async Task ServerHangs_StalePingsDetected_ReconnectsWhenItResumes()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o =>
        {
            o.PingInterval = TimeSpan.FromMilliseconds(200);
            o.MaxPingsOut = 2;
            o.ConnectTimeout = TimeSpan.FromMilliseconds(500);
        });
        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);

        await server.PauseAsync();
        try
        {
            await reconnecting;
        }
        finally
        {
            await server.ResumeAsync();
        }

        await NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
        await connection.FlushAsync();
        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
    }

    [Test]
    public async Task FlushPendingWhenConnectionLost_FailsWithConnectionException()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.PingInterval = TimeSpan.FromMinutes(5));
        await server.PauseAsync();
        try
        {
            var flush = connection.FlushAsync();
            await server.KillAsync();

            await Assert.ThrowsAsync<NatsConnectionException>(() => flush.WaitAsync(NatsTestHelpers.Generous));
        }
        finally
        {
            await server.ResumeAsync();
        }
    }

    [Test]
    public async Task MaxReconnectAttemptsExhausted_ClosedAndPublishFails()
    {
        var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.MaxReconnectAttempts = 2);
        await using var subscription = await connection.SubscribeAsync("gone.x");
        var closed = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Closed);

        await server.DisposeAsync();
        await closed;

        var ex = await Assert.ThrowsAsync<NatsConnectionException>(async () => await connection.PublishAsync("gone.x", new byte[1]));
        Assert.That(ex!.Message, Does.Contain("Gave up reconnecting"));
        // The Closed state is reported as soon as the connection gives up; its subscriptions are completed right
        // after, once the read loop has stopped, so the test waits for that rather than racing it. A reader learns why.
        var ended = await Assert.ThrowsAsync<NatsConnectionException>(async () => await subscription.Messages.Completion.WaitAsync(NatsTestHelpers.Generous));
        Assert.That(ended!.Message, Does.Contain("Gave up reconnecting"));
    }

    [Test]
    public async Task ServerHangsUnderPublishLoad_SocketStalls_StaleStillDetected()
    {
        await using var server = await NatsServerProcess.StartAsync();
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o =>
        {
            o.PingInterval = TimeSpan.FromMilliseconds(200);
            o.MaxPingsOut = 2;
            o.ConnectTimeout = TimeSpan.FromMilliseconds(500);
            o.ReconnectBufferBytes = 1024 * 1024;
            o.ReconnectBufferTimeout = TimeSpan.FromMilliseconds(200);
        });
        var reconnecting = NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Reconnecting);

        await server.PauseAsync();
        try
        {
            // Fill the socket and the outbound pipe so a publisher sits blocked on backpressure holding the write lock.
            var publisher = Task.Run(async () =>
            {
                var payload = new byte[64 * 1024];
                try
                {
                    while (!reconnecting.IsCompleted)
                    {
                        await connection.PublishAsync("stall.x", payload);
                    }
                }
                catch (NatsReconnectBufferFullException)
                {
                }
            });

            await reconnecting;
            await server.ResumeAsync();
            await NatsTestHelpers.WaitForStateAsync(connection, NatsConnectionState.Connected);
            await publisher.WaitAsync(NatsTestHelpers.Generous);
        }
        finally
        {
            await server.ResumeAsync();
        }

        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
    }
}
