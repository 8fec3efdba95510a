using System.Globalization;
using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;

namespace Kawa.Dataflow.Tests.Nats.Infrastructure;

internal static class NatsTestHelpers
{
    public static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    public static NatsConnectionOptions Options(NatsServerProcess server, Action<NatsConnectionOptions>? configure = null)
    {
        var options = new NatsConnectionOptions
        {
            Servers = [server.Url],
            Name = "kawa-tests",
            ReconnectWait = TimeSpan.FromMilliseconds(100),
            ReconnectJitter = TimeSpan.FromMilliseconds(20),
        };
        configure?.Invoke(options);
        return options;
    }

    public static async Task<NatsConnection> ConnectAsync(NatsServerProcess server, Action<NatsConnectionOptions>? configure = null)
    {
        var connection = new NatsConnection(Options(server, configure));
        await connection.ConnectAsync();
        return connection;
    }

    /// <summary>Completes when <paramref name="connection"/> is in <paramref name="state"/>; fails after <see cref="Generous"/>.</summary>
    /// <remarks>Subscribes before reading the current state, so a change between the two is not missed.</remarks>
    public static Task WaitForStateAsync(NatsConnection connection, NatsConnectionState state)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.StateChanged += (_, e) =>
        {
            if (e.Current == state)
            {
                reached.TrySetResult();
            }
        };
        if (connection.State == state)
        {
            reached.TrySetResult();
        }

        return reached.Task.WaitAsync(Generous);
    }

    /// <summary>Bounded wait for a condition that depends on an external process.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? Generous);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what ?? "condition"}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Publishes <paramref name="count"/> messages to <paramref name="subject"/> (payload: the index, from
    /// <paramref name="from"/>), with up to <paramref name="window"/> PubAcks awaited at once; returns once every
    /// message is acked by the stream.
    /// </summary>
    public static async Task PublishWindowedAsync(JetStreamContext js, string subject, int from, int count, int window = 1000)
    {
        var pending = new List<Task<PubAck>>(window);
        for (var i = from; i < from + count; i++)
        {
            pending.Add(js.PublishAsync(subject, Encoding.UTF8.GetBytes(i.ToString(CultureInfo.InvariantCulture))));
            if (pending.Count == window)
            {
                await Task.WhenAll(pending);
                pending.Clear();
            }
        }

        await Task.WhenAll(pending);
    }
}
