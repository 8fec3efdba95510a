using System.Text;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Sources;

namespace Kawa.Dataflow.Tests.Cli.Sources;

public class FollowFileSourceTests
{
    private string _dir = null!;
    private string _log = null!;
    private string _offsets = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("kawa-follow-").FullName;
        _log = Path.Combine(_dir, "app.log");
        _offsets = Path.Combine(_dir, "app.offset");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private FollowFileSource Create() => new(_log, _offsets, pollInterval: TimeSpan.FromMilliseconds(10), commitInterval: TimeSpan.Zero);

    // Bounded wait: a receive that needs the source's own polling to notice new data.
    private static async Task<Delivery<EventRecord>> Next(FollowFileSource source)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        return await source.ReceiveAsync(timeout.Token);
    }

    private static string Text(Delivery<EventRecord> d) => d.Message.Value.RawText;

    [Test]
    public async Task Receive_LinesAppendedAfterEndOfFile_AreDelivered()
    {
        File.WriteAllText(_log, "one\ntwo\n");
        await using var source = Create();

        var one = await Next(source);
        var two = await Next(source);
        var pending = Next(source);
        File.AppendAllText(_log, "thr");
        File.AppendAllText(_log, "ee\n");
        var three = await pending;

        Assert.That(new[] { Text(one), Text(two), Text(three) }, Is.EqualTo(new[] { "one", "two", "three" }));
        Assert.That(three.Message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(3UL));
    }

    [Test]
    public async Task Restart_ResumesAfterLongestSettledPrefix()
    {
        File.WriteAllText(_log, "a\nb\n\nc\n");
        await using (var source = Create())
        {
            var a = await Next(source);
            var b = await Next(source);
            var c = await Next(source);
            a.Ack.Ack();
            c.Ack.Ack();
            Assert.That(source.CommittedOffset, Is.EqualTo(2), "b is unsettled: the offset stops after a");
            b.Ack.Nack();
        }

        await using (var restarted = Create())
        {
            var first = await Next(restarted);
            var second = await Next(restarted);

            Assert.That(Text(first), Is.EqualTo("b"), "the unsettled line comes back after a restart");
            Assert.That(Text(second), Is.EqualTo("c"), "at-least-once: lines after it are read again");
            first.Ack.Terminate();
            second.Ack.Ack();
            Assert.That(restarted.CommittedOffset, Is.EqualTo(new FileInfo(_log).Length), "empty lines do not hold the offset back");
        }
    }

    [Test]
    public async Task Receive_NackedLine_IsRedeliveredAndHoldsOffset()
    {
        File.WriteAllText(_log, "x\ny\n");
        await using var source = Create();
        var x = await Next(source);
        var y = await Next(source);

        x.Ack.Nack();
        y.Ack.Ack();
        var again = await Next(source);

        Assert.That(Text(again), Is.EqualTo("x"));
        Assert.That(again.Message.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(2));
        Assert.That(source.CommittedOffset, Is.Zero);
        again.Ack.Ack();
        Assert.That(source.CommittedOffset, Is.EqualTo(4));
    }

    [Test]
    public async Task Restart_AgainstDifferentFile_StartsFromBeginning()
    {
        File.WriteAllText(_log, "old-1\nold-2\n");
        await using (var source = Create())
        {
            (await Next(source)).Ack.Ack();
            (await Next(source)).Ack.Ack();
        }

        File.Delete(_log);
        File.WriteAllText(_log, "new-1 is longer than the old file was\n");
        await using var restarted = Create();

        Assert.That(Text(await Next(restarted)), Is.EqualTo("new-1 is longer than the old file was"));
    }

    [Test]
    public async Task Receive_FileRotatedWhileRunning_ReadsNewFileFromStart()
    {
        File.WriteAllText(_log, "before rotation\n");
        await using var source = Create();
        (await Next(source)).Ack.Ack();

        var pending = Next(source);
        File.Move(_log, _log + ".1");
        File.WriteAllText(_log, "after rotation: longer than the old file, so only its identity tells\n");

        Assert.That(Text(await pending), Is.EqualTo("after rotation: longer than the old file, so only its identity tells"));
    }

    [Test]
    public async Task Receive_FileTruncated_ReadsFromStart()
    {
        File.WriteAllText(_log, "a fairly long first line\n");
        await using var source = Create();
        (await Next(source)).Ack.Ack();

        var pending = Next(source);
        File.WriteAllText(_log, "a fairly\n");

        Assert.That(Text(await pending), Is.EqualTo("a fairly"));
    }

    [Test]
    public async Task Receive_FileCreatedLater_IsPickedUp()
    {
        await using var source = Create();

        var pending = Next(source);
        File.WriteAllText(_log, "late\n");

        Assert.That(Text(await pending), Is.EqualTo("late"));
    }

    [Test]
    public async Task Open_CorruptOffsetFile_FailsNamingIt()
    {
        File.WriteAllText(_log, "a\n");
        File.WriteAllText(_offsets, "{ not json");
        await using var source = Create();

        var ex = await Assert.ThrowsAsync<InvalidDataException>(async () => await Next(source));

        Assert.That(ex!.Message, Does.Contain("app.offset").And.Contain("is corrupt"));
    }
}
