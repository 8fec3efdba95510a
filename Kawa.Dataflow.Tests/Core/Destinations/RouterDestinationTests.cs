using Kawa.Dataflow.Tests.Infrastructure;
using static Kawa.Dataflow.Tests.Core.Destinations.FanOutDestinationTests;

namespace Kawa.Dataflow.Tests.Core.Destinations;

public class RouterDestinationTests
{
    [Test]
    public async Task ByKey_MessagesOfOneSendToDifferentRoutes_AckedOnceAllRoutesAcked()
    {
        var errors = new HoldingDestination<string>();
        var access = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByKey(m => m.Topic, new Dictionary<string, IDestination<string>> { ["errors"] = errors, ["access"] = access });
        var probe = new AckProbe();

        await router.SendAsync(probe, new Messages<string>([new("e1", Topic: "errors"), new("a1", Topic: "access"), new("e2", Topic: "errors")]));

        Assert.That(errors.Sent.Single().Messages.Select(m => m.Value), Is.EqualTo(new[] { "e1", "e2" }));
        Assert.That(access.Sent.Single().Messages.Select(m => m.Value), Is.EqualTo(new[] { "a1" }));
        errors.Sent[0].Token.Ack();
        Assert.That(probe.IsCompleted, Is.False);
        access.Sent[0].Token.Ack();
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ByKey_RouteKeepsItsTokenAlive_InProgressReachesTheOriginal()
    {
        var errors = new HoldingDestination<string>();
        var access = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByKey(m => m.Topic, new Dictionary<string, IDestination<string>> { ["errors"] = errors, ["access"] = access });
        var probe = new AckProbe();
        await router.SendAsync(probe, new Messages<string>([new("e1", Topic: "errors"), new("a1", Topic: "access")]));

        errors.Sent[0].Token.InProgress();
        access.Sent[0].Token.InProgress();

        Assert.That(probe.InProgressCount, Is.EqualTo(2), "each route's keep-alive reaches the source's token");
        Assert.That(probe.IsCompleted, Is.False);
        errors.Sent[0].Token.Ack();
        access.Sent[0].Token.Ack();
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ByPredicate_FirstMatchWinsAndDefaultTakesTheRest()
    {
        var big = new HoldingDestination<int>();
        var even = new HoldingDestination<int>();
        var other = new HoldingDestination<int>();
        var router = RouterDestination<int>.ByPredicate([(m => m.Value > 100, big), (m => m.Value % 2 == 0, even)], other);

        foreach (var value in new[] { 200, 4, 3 })
        {
            await router.SendAsync(AckToken.None(), new Message<int>(value));
        }

        Assert.That(big.Sent.Select(s => s.Messages[0].Value), Is.EqualTo(new[] { 200 }));
        Assert.That(even.Sent.Select(s => s.Messages[0].Value), Is.EqualTo(new[] { 4 }));
        Assert.That(other.Sent.Select(s => s.Messages[0].Value), Is.EqualTo(new[] { 3 }));
    }

    [Test]
    public async Task ByKey_NullOrUnknownKey_GoesToTheDefaultRoute()
    {
        var known = new HoldingDestination<string>();
        var fallback = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByKey(m => m.Key, new Dictionary<string, IDestination<string>> { ["known"] = known }, fallback);

        await router.SendAsync(AckToken.None(), new Messages<string>([new("a", Key: "known"), new("b", Key: null), new("c", Key: "other")]));

        Assert.That(known.Sent.Single().Messages.Select(m => m.Value), Is.EqualTo(new[] { "a" }));
        Assert.That(fallback.Sent.Single().Messages.Select(m => m.Value), Is.EqualTo(new[] { "b", "c" }));
    }

    [Test]
    public async Task Unrouted_Error_ThrowsBeforeWritingAnything()
    {
        var known = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByKey(m => m.Key, new Dictionary<string, IDestination<string>> { ["known"] = known });
        var probe = new AckProbe();

        var error = await Assert.ThrowsAsync<UnroutedMessageException>(async () =>
            await router.SendAsync(probe, new Messages<string>([new("ok", Key: "known"), new("lost", Key: "mystery")])));

        Assert.That(error!.RouteKey, Is.EqualTo("mystery"));
        Assert.That(known.Sent, Is.Empty, "nothing of the send was written");
        Assert.That(probe.IsCompleted, Is.False);
    }

    [Test]
    public async Task RunAsync_MessageWithNoRoute_PipelineFailsNamingTheKeyAndNacksWithoutWriting()
    {
        var known = new Kawa.Dataflow.Tests.Core.Pipeline.RecordingDestination<int>();
        var router = RouterDestination<int>.ByKey(m => m.Key, new Dictionary<string, IDestination<int>> { ["known"] = known });
        var source = new Kawa.Dataflow.Tests.Core.Pipeline.TestSource<int>([new Message<int>(0, "known"), new Message<int>(1, "mystery")]);
        var pipeline = Kawa.Dataflow.Pipeline.Create("router-unrouted")
            .From(source)
            .To(router)
            .Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(error.InnerException, Is.TypeOf<UnroutedMessageException>().With.Property(nameof(UnroutedMessageException.RouteKey)).EqualTo("mystery"));
        Assert.That(error.Message, Does.Contain("mystery"));
        Assert.That(known.Written.Select(m => m.Value), Is.EqualTo(new[] { 0 }));
        Assert.That(source.Tokens.Single(t => t.Id == 1).Outcome, Is.EqualTo(AckOutcome.Negative()), "unrouted: redelivered once a route exists, never acked");
        Assert.That(source.Tokens.Single(t => t.Id == 0).Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task RunAsync_NoRouteWithDropAndAck_DropsItAcksItAndCompletes()
    {
        var known = new Kawa.Dataflow.Tests.Core.Pipeline.RecordingDestination<int>();
        var router = RouterDestination<int>.ByPredicate([(m => m.Value % 2 == 0, (IDestination<int>)known)], unrouted: UnroutedBehavior.DropAndAck);
        var source = new Kawa.Dataflow.Tests.Core.Pipeline.TestSource<int>(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Ints(10));
        var pipeline = Kawa.Dataflow.Pipeline.Create("router-drop").From(source).To(router).Build();

        await pipeline.RunAsync().WaitAsync(Kawa.Dataflow.Tests.Core.Pipeline.TestMessages.Generous);

        Assert.That(known.Written.Select(m => m.Value).Order(), Is.EqualTo(new[] { 0, 2, 4, 6, 8 }));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task Unrouted_DropAndAck_AcksWithoutWriting()
    {
        var known = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByKey(m => m.Key, new Dictionary<string, IDestination<string>> { ["known"] = known }, unrouted: UnroutedBehavior.DropAndAck);
        var probe = new AckProbe();

        await router.SendAsync(probe, new Message<string>("lost", Key: "mystery"));

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(known.Sent, Is.Empty);
    }

    [Test]
    public async Task Route_Nacks_OriginalNacked()
    {
        var route = new HoldingDestination<string>();
        var router = RouterDestination<string>.ByPredicate([(_ => true, route)]);
        var probe = new AckProbe();
        await router.SendAsync(probe, new Message<string>("x"));

        route.Sent[0].Token.Nack(TimeSpan.FromSeconds(2));

        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(2))));
    }

    [Test]
    public async Task Route_Throws_RethrowsAndLeavesToken()
    {
        var router = RouterDestination<string>.ByPredicate([(_ => true, new DestinationFunc<string>((_, _, _) => throw new IOException("down")))]);
        var probe = new AckProbe();

        await Assert.ThrowsAsync<IOException>(async () => await router.SendAsync(probe, new Message<string>("x")));
        Assert.That(probe.IsCompleted, Is.False);
    }

    [Test]
    public async Task FlushAsync_DrainsEveryRouteAndDefaultOnce()
    {
        var a = new HoldingDestination<int>();
        var fallback = new HoldingDestination<int>();
        var router = RouterDestination<int>.ByPredicate([(_ => false, a), (_ => false, a)], fallback);

        await router.FlushAsync();

        Assert.That(a.Flushed && fallback.Flushed, Is.True);
    }

    [Test]
    public async Task CommitHeldAsync_ForwardsToEveryRouteAndTheDefault()
    {
        var errors = new Kawa.Dataflow.Tests.Core.Pipeline.HoldingDestination<string>();
        var other = new Kawa.Dataflow.Tests.Core.Pipeline.HoldingDestination<string>();
        IDestination<string> router = RouterDestination<string>.ByKey(m => m.Topic, new Dictionary<string, IDestination<string>> { ["errors"] = errors }, other);
        var probe = new AckProbe();
        await router.SendAsync(probe, new Messages<string>([new("e1", Topic: "errors"), new("a1", Topic: "access")]));

        await router.CommitHeldAsync();

        Assert.That(errors.Events, Is.EqualTo(new[] { "send e1", "commit 1" }));
        Assert.That(other.Events, Is.EqualTo(new[] { "send a1", "commit 1" }));
        Assert.That(probe.Outcome, Is.EqualTo(AckOutcome.Acked));
    }
}
