using System.Collections.Concurrent;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Parquet.Source;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet.Lake;
using Kawa.Dataflow.Tests.Parquet.Sink;
using static Kawa.Dataflow.Tests.Parquet.Sink.SinkTestSupport;

namespace Kawa.Dataflow.Tests.Parquet.Source;

/// <summary>The replay source is at-least-once within its run: a negatively acked row comes back after its delay, and the
/// stream ends only once every row has its final outcome.</summary>
public sealed class ParquetSourceTests
{
    private TempDirectory _root = null!;

    [SetUp]
    public void SetUp() => _root = new TempDirectory();

    [TearDown]
    public void TearDown() => _root.Dispose();

    /// <summary>Writes one committed file holding the rows with these ids.</summary>
    internal static async Task WriteRowsAsync(TempDirectory root, params long[] ids)
    {
        await using var destination = new ParquetDestination<SinkEvent>(new ParquetDestinationOptions<SinkEvent> { Storage = Storage(root) });
        await destination.SendAsync(AckToken.None(), new Messages<SinkEvent>([.. ids.Select(id => Event(id))]));
        await destination.FlushAsync();
    }

    [Test]
    public async Task Receive_NackedRow_DeliveredAgainAfterItsDelayWithDeliveryCountTwo()
    {
        await WriteRowsAsync(_root, 7, 8);
        var time = new FakeTimeProvider();
        await using var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Path }, time);
        var seven = await source.ReceiveAsync();
        var eight = await source.ReceiveAsync();
        seven.Ack.Nack(TimeSpan.FromSeconds(5));
        eight.Ack.Ack();

        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True, "every row read, one outcome awaited: idle once");
        var again = source.ReceiveAsync().AsTask();
        Assert.That(again.IsCompleted, Is.False, "not before its delay");
        time.Advance(TimeSpan.FromSeconds(5));
        var redelivered = await again.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(redelivered.Message.Value.Id, Is.EqualTo(7));
        Assert.That(redelivered.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(0UL));
        Assert.That(redelivered.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));
        Assert.That(seven.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(1));
        redelivered.Ack.Ack();
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That((source.Acked, source.NegativelyAcked, source.Terminated), Is.EqualTo((2, 1, 0)));
    }

    [Test]
    public async Task Receive_LastRowReadWithOutcomesPending_IdleOnceThenEndOfStreamAfterTheLastOutcome()
    {
        await WriteRowsAsync(_root, 1, 2);
        await using var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Path });
        var one = await source.ReceiveAsync();
        var two = await source.ReceiveAsync();

        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True);
        var end = source.ReceiveAsync().AsTask();
        Assert.That(end.IsCompleted, Is.False, "idle is said once; then it waits for the tokens");
        one.Ack.Ack();
        Assert.That(end.IsCompleted, Is.False, "one token is still out");
        two.Ack.Terminate();

        Assert.That((await end.WaitAsync(TimeSpan.FromSeconds(10))).IsEndOfStream, Is.True);
        Assert.That((source.Acked, source.Terminated), Is.EqualTo((1, 1)));
    }

    [Test]
    public async Task Pipeline_DestinationNacksARowOnce_EveryRowArrivesAndIsAcked()
    {
        await WriteRowsAsync(_root, 1, 2, 3, 4);
        var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = _root.Path });
        var written = new ConcurrentQueue<long>();
        var refused = 0;
        var destination = new DestinationFunc<SinkEvent>((ack, messages, _) =>
        {
            if (messages.Any(m => m.Value.Id == 3) && Interlocked.Exchange(ref refused, 1) == 0)
            {
                ack.Nack(); // a sink that could not take row 3 the first time
                return default;
            }

            foreach (var message in messages)
            {
                written.Enqueue(message.Value.Id);
            }

            ack.Ack();
            return default;
        });

        await Kawa.Dataflow.Pipeline.Create("replay").From(source).To(destination).Build().RunAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(written.Order(), Is.EqualTo(new long[] { 1, 2, 3, 4 }), "the nacked row was replayed, not lost");
        Assert.That((source.Acked, source.NegativelyAcked), Is.EqualTo((4, 1)));
    }
}
