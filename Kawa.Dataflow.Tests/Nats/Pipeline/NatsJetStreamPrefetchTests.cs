using System.Collections.Concurrent;
using System.Text.Json;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Pipeline;

/// <summary>The pull window follows the pipeline's in-flight limits unless the options set it.</summary>
[NonParallelizable]
public class NatsJetStreamPrefetchTests : JetStreamTestBase
{
    private static NatsJetStreamSourceOptions Options(string stream) => new() { Stream = stream, Durable = "d", StopAtEnd = true };

    private static Kawa.Dataflow.Pipeline Build(ISource<byte[]> source, IDestination<byte[]> destination, int maxInFlight)
        => Kawa.Dataflow.Pipeline.Create("prefetch").From(source).To(destination).Build(new PipelineOptions { MaxInFlightMessages = maxInFlight });

    [Test]
    public async Task Build_PipelineWithMaxInFlight50_EveryPullAsksForAtMost50()
    {
        var stream = await StreamAsync(300);
        await using var pulls = await PullWire.WatchAsync(Connection, stream, "d");
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), Options(stream));
        var destination = new RecordingDestination();

        var pipeline = Build(source, destination, maxInFlight: 50);
        await pipeline.RunAsync().WaitAsync(NatsTestHelpers.Generous);
        await pulls.FlushAsync(Connection);

        Assert.That(source.PrefetchMessages, Is.EqualTo(50));
        Assert.That(destination.Seen, Has.Count.EqualTo(300));
        Assert.That(pulls.Batches, Is.Not.Empty);
        Assert.That(pulls.Batches, Has.All.LessThanOrEqualTo(50), "no pull asked for more than the pipeline's window, the first one included");
    }

    [Test]
    public async Task Build_ExplicitPrefetchMessages_WinsOverThePipeline()
    {
        var stream = await StreamAsync(5);
        await using var pulls = await PullWire.WatchAsync(Connection, stream, "d");
        var options = Options(stream);
        options.PrefetchMessages = 100;
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options);

        _ = Build(source, new RecordingDestination(), maxInFlight: 50);
        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        (await source.ReceiveAsync(cts.Token)).Ack.Ack();
        await pulls.FlushAsync(Connection);

        Assert.That(source.PrefetchMessages, Is.EqualTo(100));
        Assert.That(pulls.Batches.First(), Is.EqualTo(100));
    }

    [Test]
    public async Task StartAsync_OutsideAPipeline_Pulls256()
    {
        var stream = await StreamAsync(5);
        await using var pulls = await PullWire.WatchAsync(Connection, stream, "d");
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), Options(stream));

        using var cts = new CancellationTokenSource(NatsTestHelpers.Generous);
        (await source.ReceiveAsync(cts.Token)).Ack.Ack();
        await pulls.FlushAsync(Connection);

        Assert.That(source.PrefetchMessages, Is.EqualTo(256));
        Assert.That(pulls.Batches.First(), Is.EqualTo(256));
        Assert.That(pulls.MaxBytes.First(), Is.Zero, "no byte budget unless asked for");
    }

    [Test]
    public async Task Build_PipelineWithDefaultLimits_KeepsTheWindowAt256WithoutAByteBudget()
    {
        var stream = await StreamAsync(0);
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), Options(stream));

        _ = Kawa.Dataflow.Pipeline.Create("defaults").From(source).To(new RecordingDestination()).Build();

        Assert.That(source.PrefetchMessages, Is.EqualTo(256));
        Assert.That(source.PrefetchBytes, Is.Zero, "256 MiB cannot bind a pull of 256 messages of at most 1 MiB");
    }

    [Test]
    public async Task Build_PipelineByteLimitAFullPullCouldPass_BecomesTheBudgetButNeverBelowTwoMaxPayloads()
    {
        var stream = await StreamAsync(0);
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), Options(stream));
        await using var tiny = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), Options(stream));
        var maxPayload = Connection.ServerInfo.MaxPayload;

        _ = Kawa.Dataflow.Pipeline.Create("bytes").From(source).To(new RecordingDestination()).Build(new PipelineOptions { MaxInFlightBytes = 16 * maxPayload });
        _ = Kawa.Dataflow.Pipeline.Create("tiny").From(tiny).To(new RecordingDestination()).Build(new PipelineOptions { MaxInFlightBytes = 1000 });

        Assert.That(source.PrefetchBytes, Is.EqualTo(16 * maxPayload));
        Assert.That(tiny.PrefetchBytes, Is.EqualTo(2 * maxPayload), "any message the server accepts still fits one pull");
    }

    [Test]
    public async Task Build_ExplicitPrefetchBytesZero_NoBudgetWhateverThePipeline()
    {
        var stream = await StreamAsync(0);
        var options = Options(stream);
        options.PrefetchBytes = 0;
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options);

        _ = Kawa.Dataflow.Pipeline.Create("bytes").From(source).To(new RecordingDestination()).Build(new PipelineOptions { MaxInFlightBytes = 1000 });

        Assert.That(source.PrefetchBytes, Is.Zero);
    }

    [Test]
    public async Task ValidateAgainst_UnsetPrefetch_CountsThePipelinesWindowNot256()
    {
        var stream = await StreamAsync(0);
        var fits = Options(stream);
        fits.MaxAckPending = 100;
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), fits);
        var pipeline = Build(source, new RecordingDestination(), maxInFlight: 50);

        Assert.DoesNotThrow(() => source.ValidateAgainst(pipeline), "50 unsettled + a window of 50 = 100 <= max_ack_pending 100");
        Assert.That(NatsJetStreamSource.EffectivePrefetchMessages(null, 50), Is.EqualTo(50));
        Assert.That(NatsJetStreamSource.EffectivePrefetchMessages(null, 4096), Is.EqualTo(256));
        Assert.That(NatsJetStreamSource.EffectivePrefetchMessages(51, 50), Is.EqualTo(51));
    }

    [Test]
    public async Task Build_ExplicitPrefetchAboveTheRoomLeft_ThrowsNamingIt()
    {
        var stream = await StreamAsync(0);
        var options = Options(stream);
        options.MaxAckPending = 100;
        options.PrefetchMessages = 51;
        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(Server), options);

        // Building the pipeline runs the same check.
        var error = Assert.Throws<InvalidOperationException>(() => Build(source, new RecordingDestination(), maxInFlight: 50));
        Assert.That(error!.Message, Does.Contain("101").And.Contain("PrefetchMessages 51"));
    }

    [Test]
    public async Task Build_TypedSource_ForwardsThePipelinesWindow()
    {
        var stream = await StreamAsync(0);
        await using var source = await NatsJetStreamSource<string>.StartAsync(NatsTestHelpers.Options(Server), Options(stream), NatsPayloadCodec.Utf8String);

        _ = Kawa.Dataflow.Pipeline.Create("typed").From(source).To(new DiscardDestination<string>()).Build(new PipelineOptions { MaxInFlightMessages = 20 });

        Assert.That(source.PrefetchMessages, Is.EqualTo(20));
    }

    private sealed class DiscardDestination<T> : IDestination<T>
    {
        public ValueTask SendAsync(AckToken ack, Messages<T> messages, CancellationToken cancellationToken = default)
        {
            ack.Ack();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>The pull requests a consumer sends, seen on the wire by subscribing to its <c>MSG.NEXT</c> subject.</summary>
internal sealed class PullWire : IAsyncDisposable
{
    private readonly ConcurrentQueue<(int Batch, long MaxBytes)> _pulls = new();
    private readonly NatsSubscription _subscription;
    private readonly Task _watcher;
    private long _processed;

    private PullWire(NatsSubscription subscription)
    {
        _subscription = subscription;
        _watcher = Task.Run(async () =>
        {
            await foreach (var msg in _subscription.ReadAllAsync())
            {
                using var body = JsonDocument.Parse(msg.Data);
                var batch = body.RootElement.GetProperty("batch").GetInt32();
                var maxBytes = body.RootElement.TryGetProperty("max_bytes", out var b) ? b.GetInt64() : 0;
                _pulls.Enqueue((batch, maxBytes));
                Interlocked.Increment(ref _processed);
            }
        });
    }

    public IEnumerable<int> Batches => _pulls.Select(p => p.Batch);

    public IEnumerable<long> MaxBytes => _pulls.Select(p => p.MaxBytes);

    public int Count => _pulls.Count;

    public static async Task<PullWire> WatchAsync(NatsConnection connection, string stream, string durable)
    {
        var subscription = await connection.SubscribeAsync($"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}");
        await connection.FlushAsync();
        return new PullWire(subscription);
    }

    /// <summary>Waits until every pull sent before now has been seen (a round trip through the server orders them).</summary>
    public async Task FlushAsync(NatsConnection connection)
    {
        await connection.FlushAsync();
        await NatsTestHelpers.WaitUntilAsync(() => Task.FromResult(Interlocked.Read(ref _processed) == _subscription.Received), what: "the pull requests to be read");
    }

    public async ValueTask DisposeAsync()
    {
        await _subscription.DisposeAsync();
        await _watcher;
    }
}
