using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Nats.Pipeline;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

/// <summary>Updating consumers, and publishing with the expected-state headers, against a real nats-server.</summary>
[NonParallelizable]
public class JetStreamConsumerUpdateTests : ConnectedJetStreamTests
{
    private async Task<string> StreamAsync(TimeSpan? duplicateWindow = null)
    {
        var stream = "U" + Guid.NewGuid().ToString("N")[..8];
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"], DuplicateWindow = duplicateWindow ?? TimeSpan.Zero });
        return stream;
    }

    [Test]
    public async Task UpdateConsumerAsync_AckWaitAndMaxDeliverChanged_ServerHoldsTheNewValues()
    {
        var stream = await StreamAsync();
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(30), MaxDeliver = 5 });

        var updated = await Js.UpdateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(45), MaxDeliver = 3 });
        var info = await Js.GetConsumerAsync(stream, "d");

        Assert.That(updated.Config!.AckWait, Is.EqualTo(TimeSpan.FromSeconds(45)));
        Assert.That(info.Config!.AckWait, Is.EqualTo(TimeSpan.FromSeconds(45)), "the server, asked again, has the new ack wait");
        Assert.That(info.Config.MaxDeliver, Is.EqualTo(3));
    }

    [Test]
    public async Task UpdateConsumerAsync_DeliverPolicyChanged_RefusedWithApiError()
    {
        var stream = await StreamAsync();
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit });

        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.UpdateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, DeliverPolicy = DeliverPolicy.New }));

        Assert.That(error!.ErrorCode, Is.Not.Zero);
        Assert.That(error.Description, Does.Contain("deliver policy").IgnoreCase);
        Assert.That((await Js.GetConsumerAsync(stream, "d")).Config!.DeliverPolicy, Is.EqualTo(DeliverPolicy.All), "unchanged");
    }

    [Test]
    public async Task SourceStart_ExistingDurableWithOtherAckWaitAndMaxDeliver_UpdatesIt()
    {
        var stream = await StreamAsync();
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(30), MaxDeliver = 5 });

        await using var source = await NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(NatsServer.Server),
            new NatsJetStreamSourceOptions { Stream = stream, Durable = "d", AckWait = TimeSpan.FromSeconds(50), MaxDeliver = 2 });
        var info = await Js.GetConsumerAsync(stream, "d");

        Assert.That(source.AckWait, Is.EqualTo(TimeSpan.FromSeconds(50)));
        Assert.That(info.Config!.AckWait, Is.EqualTo(TimeSpan.FromSeconds(50)));
        Assert.That(info.Config.MaxDeliver, Is.EqualTo(2));
    }

    [Test]
    public async Task SourceStart_ExistingDurableWithOtherDeliverPolicy_TypedErrorSayingWhatToDo()
    {
        var stream = await StreamAsync();
        await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "d", AckPolicy = AckPolicy.Explicit });

        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(NatsServer.Server),
            new NatsJetStreamSourceOptions { Stream = stream, Durable = "d", DeliverPolicy = JetStreamDeliverPolicy.New }));

        Assert.That(error!.Message, Does.Contain("Consumer 'd'").And.Contain(stream).And.Contain("cannot update").And.Contain("CreateOrUpdate = false"));
        Assert.That(error.Description, Does.Contain("deliver policy").IgnoreCase, "the server's reason is kept");
        Assert.That(error.ErrorCode, Is.Not.Zero);
        Assert.That(error.InnerException, Is.InstanceOf<JetStreamApiException>());
    }

    [Test]
    public async Task SourceStart_StreamMissing_ServerErrorUnwrapped()
    {
        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => NatsJetStreamSource.StartAsync(NatsTestHelpers.Options(NatsServer.Server),
            new NatsJetStreamSourceOptions { Stream = "NOPE" + Guid.NewGuid().ToString("N")[..6], Durable = "d" }));

        Assert.That(error!.ErrorCode, Is.EqualTo(JetStreamContext.StreamNotFound));
        Assert.That(error.Message, Does.Not.Contain("cannot update"));
    }

    [Test]
    public async Task Publish_ExpectedStream_AcceptedForItsStreamRejectedForAnother()
    {
        var stream = await StreamAsync();

        var ok = await Js.PublishAsync($"{stream}.a", "x"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedStream = stream });
        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.PublishAsync($"{stream}.a", "y"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedStream = "OTHER" }));

        Assert.That(ok.Stream, Is.EqualTo(stream));
        Assert.That(error!.ErrorCode, Is.EqualTo(10060), error.Message);
        Assert.That((await Js.GetStreamAsync(stream)).State!.Messages, Is.EqualTo(1UL), "the refused message was not stored");
    }

    [Test]
    public async Task Publish_ExpectedLastMsgId_AcceptedWhenItMatchesRejectedOtherwise()
    {
        var stream = await StreamAsync(TimeSpan.FromMinutes(1));
        await Js.PublishAsync($"{stream}.a", "1"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "m1" });

        var ok = await Js.PublishAsync($"{stream}.a", "2"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "m2", ExpectedLastMsgId = "m1" });
        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.PublishAsync($"{stream}.a", "3"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "m3", ExpectedLastMsgId = "m1" }));

        Assert.That(ok.Seq, Is.EqualTo(2UL));
        Assert.That(error!.ErrorCode, Is.EqualTo(10070), error.Message);
        Assert.That((await Js.GetStreamAsync(stream)).State!.Messages, Is.EqualTo(2UL));
    }

    [Test]
    public async Task Publish_ExpectedLastSubjectSequence_AcceptedWhenItMatchesRejectedOtherwise()
    {
        var stream = await StreamAsync();
        await Js.PublishAsync($"{stream}.a", "a1"u8.ToArray()); // seq 1
        await Js.PublishAsync($"{stream}.b", "b1"u8.ToArray()); // seq 2: another subject

        var ok = await Js.PublishAsync($"{stream}.a", "a2"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedLastSubjectSequence = 1 });
        var error = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.PublishAsync($"{stream}.a", "a3"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedLastSubjectSequence = 1 }));

        Assert.That(ok.Seq, Is.EqualTo(3UL), "the stream's last sequence was 2; the subject's was 1");
        Assert.That(error!.ErrorCode, Is.EqualTo(10071), error.Message);
        Assert.That((await Js.GetStreamAsync(stream)).State!.Messages, Is.EqualTo(3UL));
    }
}
