using System.Text;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Sources;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Sources;

public class LineSourceTests
{
    private static LineSource Over(string text, int maxLineBytes = 1024 * 1024)
        => new(new MemoryStream(Encoding.UTF8.GetBytes(text)), "test.log", maxLineBytes: maxLineBytes);

    private static string Text(Delivery<EventRecord> d) => d.Message.Value.RawText;

    [Test]
    public async Task Receive_LinesWithCrLfEmptyAndNoFinalNewline_DeliversEachNonEmptyLineNumbered()
    {
        await using var source = Over("first\r\n\nsecond\nthird");

        var a = await source.ReceiveAsync();
        var b = await source.ReceiveAsync();
        var c = await source.ReceiveAsync();

        Assert.That(new[] { Text(a), Text(b), Text(c) }, Is.EqualTo(new[] { "first", "second", "third" }));
        Assert.That(b.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(3UL), "the empty line counts");
        Assert.That(a.Message.Attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("test.log"));
        Assert.That(a.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(1));
        Assert.That(a.Message.Attributes.GetOrDefault(MessageAttributeKeys.PayloadSize), Is.EqualTo(5));
        a.Ack.Ack();
        b.Ack.Ack();
        c.Ack.Ack();
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That(source.Acked, Is.EqualTo(3));
    }

    [Test]
    public async Task Receive_AtEndWithTokensInFlight_IdleOnceThenWaitsForOutcomesBeforeEndOfStream()
    {
        await using var source = Over("only\n");
        var delivery = await source.ReceiveAsync();

        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True, "exhausted with a token in flight: the sink may commit what it holds");
        var end = source.ReceiveAsync().AsTask();
        Assert.That(end.IsCompleted, Is.False, "idle is said once; then it waits for the token");

        delivery.Ack.Ack();
        Assert.That((await end).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task Receive_RedeliveryAfterIdle_IdleAgainWhenOnlyOutcomesAreAwaited()
    {
        await using var source = Over("a\n");
        var first = await source.ReceiveAsync();
        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True);

        first.Ack.Nack();
        var again = await source.ReceiveAsync();
        Assert.That(again.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));

        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True, "a new idle period after the redelivery");
        again.Ack.Ack();
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task Receive_NackedLineWithDelay_RedeliveredWhenTheSourcesClockReachesItsDueTime()
    {
        var time = new FakeTimeProvider();
        await using var source = new LineSource(new MemoryStream("a\n"u8.ToArray()), "test.log", time);
        var a = await source.ReceiveAsync();
        a.Ack.Nack(TimeSpan.FromMinutes(5));
        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True);

        var again = source.ReceiveAsync().AsTask();
        Assert.That(again.IsCompleted, Is.False, "not before its delay");
        time.Advance(TimeSpan.FromMinutes(5));

        var redelivered = await again.WaitAsync(TimeSpan.FromSeconds(10)); // the clock is fake: five wall minutes would time out
        Assert.That(Text(redelivered), Is.EqualTo("a"));
        Assert.That(redelivered.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));
    }

    [Test]
    public async Task Receive_NackedLine_IsRedeliveredWithHigherDeliveryCountThenTerminateDrops()
    {
        await using var source = Over("a\nb\n");
        var a = await source.ReceiveAsync();
        var b = await source.ReceiveAsync();

        a.Ack.Nack();
        b.Ack.Terminate();
        var again = await source.ReceiveAsync();

        Assert.That(Text(again), Is.EqualTo("a"));
        Assert.That(again.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));
        Assert.That(again.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(1UL));
        again.Ack.Ack();
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True, "the terminated line is not redelivered");
        Assert.That((source.Acked, source.Terminated, source.Redelivered), Is.EqualTo((1L, 1L, 1L)));
    }

    [Test]
    public async Task Receive_CancelledWhileWaitingForOutcomes_Throws()
    {
        await using var source = Over("x\n");
        _ = await source.ReceiveAsync();
        Assert.That((await source.ReceiveAsync()).IsIdle, Is.True);
        using var cts = new CancellationTokenSource();

        var pending = source.ReceiveAsync(cts.Token).AsTask();
        cts.Cancel();

        Assert.That(async () => await pending, Throws.InstanceOf<OperationCanceledException>());
    }

    [Test]
    public async Task Receive_LineOverLimit_ThrowsNamingTheLine()
    {
        await using var source = Over("ok\n" + new string('x', 100) + "\n", maxLineBytes: 50);
        _ = await source.ReceiveAsync();

        var ex = await Assert.ThrowsAsync<InvalidDataException>(async () => await source.ReceiveAsync());

        Assert.That(ex!.Message, Is.EqualTo("test.log: line 2 is longer than 50 bytes"));
    }

    [Test]
    public async Task OpenFile_SampleAccessLog_DeliversAll500Lines()
    {
        var path = Path.Combine(TestPaths.RepoRoot, "samples", "access.log");
        await using var source = LineSource.OpenFile(path);
        var count = 0;

        while (true)
        {
            var delivery = await source.ReceiveAsync();
            if (delivery.IsEndOfStream)
            {
                break;
            }

            count++;
            delivery.Ack.Ack();
        }

        Assert.That(count, Is.EqualTo(500));
    }
}
