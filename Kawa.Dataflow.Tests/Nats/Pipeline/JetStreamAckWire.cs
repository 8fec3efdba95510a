using System.Collections.Concurrent;
using System.Text;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The final outcomes a JetStream consumer sends for one stream, observed on the wire by subscribing to its
/// <c>$JS.ACK.&lt;stream&gt;.&gt;</c> subjects: what the server was told, not what the client meant to tell it.</summary>
internal sealed class JetStreamAckWire : IAsyncDisposable
{
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<AckOutcome>> _seen = new();
    private readonly NatsSubscription _acks;
    private readonly Task _watcher;

    private JetStreamAckWire(NatsSubscription acks)
    {
        _acks = acks;
        _watcher = Task.Run(WatchAsync);
    }

    /// <summary>A new stream holding <paramref name="count"/> messages (payload <paramref name="payload"/>(i)), watched.</summary>
    public static async Task<(string Stream, JetStreamAckWire Wire)> StreamWithMessagesAsync(NatsConnection connection, int count, Func<int, byte[]> payload)
    {
        var js = new JetStreamContext(connection);
        var stream = "K" + Guid.NewGuid().ToString("N")[..10];
        await js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        for (var i = 0; i < count; i++)
        {
            await js.PublishAsync($"{stream}.m", payload(i));
        }

        return (stream, await WatchAsync(connection, stream));
    }

    /// <summary>The options a contract fixture's consumer on <paramref name="stream"/> uses.</summary>
    public static NatsJetStreamSourceOptions ConsumerOptions(string stream, bool stopAtEnd)
        => new() { Stream = stream, Durable = "contract", StopAtEnd = stopAtEnd, AckWait = TimeSpan.FromSeconds(30) };

    /// <summary>The outcome sent for <paramref name="message"/> (by its stream sequence); see <see cref="OutcomeOf"/>.</summary>
    public AckOutcome? OutcomeOf<T>(Message<T> message, TimeSpan timeout) => OutcomeOf(message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), timeout);

    public static async Task<JetStreamAckWire> WatchAsync(NatsConnection connection, string stream)
    {
        var acks = await connection.SubscribeAsync($"$JS.ACK.{stream}.>");
        await connection.FlushAsync();
        return new JetStreamAckWire(acks);
    }

    /// <summary>The outcome sent for the message with this stream sequence, waiting up to <paramref name="timeout"/> for it
    /// to travel (an ack is sent asynchronously); <see langword="null"/> if none came.</summary>
    public AckOutcome? OutcomeOf(ulong sequence, TimeSpan timeout)
    {
        var outcome = Slot(sequence).Task;
        return outcome.Wait(timeout) ? outcome.Result : null;
    }

    public async ValueTask DisposeAsync()
    {
        await _acks.DisposeAsync();
        await _watcher;
    }

    private TaskCompletionSource<AckOutcome> Slot(ulong sequence)
        => _seen.GetOrAdd(sequence, static _ => new TaskCompletionSource<AckOutcome>(TaskCreationOptions.RunContinuationsAsynchronously));

    private async Task WatchAsync()
    {
        await foreach (var ack in _acks.ReadAllAsync())
        {
            var body = Encoding.UTF8.GetString(ack.Data);
            AckOutcome? outcome = body switch
            {
                "+ACK" => AckOutcome.Acked,
                "+TERM" => AckOutcome.Terminated,
                _ when body.StartsWith("-NAK", StringComparison.Ordinal) => AckOutcome.Negative(ParseDelay(body)),
                _ => null, // +WPI is not an outcome
            };
            if (outcome is { } o)
            {
                Slot(AckMetadata.Parse(ack.Subject).StreamSequence).TrySetResult(o);
            }
        }
    }

    // -NAK {"delay": <nanoseconds>}
    private static TimeSpan ParseDelay(string body)
    {
        var start = body.IndexOf(':', StringComparison.Ordinal);
        return start < 0 ? TimeSpan.Zero : TimeSpan.FromTicks(long.Parse(body[(start + 1)..].TrimEnd('}', ' '), System.Globalization.CultureInfo.InvariantCulture) / 100);
    }
}
