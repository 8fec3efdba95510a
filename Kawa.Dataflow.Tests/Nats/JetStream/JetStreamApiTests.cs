using System.Text;
using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Nats.JetStream;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.JetStream;

[NonParallelizable]
public class JetStreamApiTests : ConnectedJetStreamTests
{
    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..8];

    [Test]
    public async Task StreamCrud_CreateInfoUpdateDelete()
    {
        var name = Unique("S");
        var created = await Js.CreateStreamAsync(new StreamConfig { Name = name, Subjects = [$"{name}.>"], MaxAge = TimeSpan.FromHours(1), Storage = StorageType.File });

        Assert.That(created.Config!.Name, Is.EqualTo(name));
        Assert.That(created.Config.MaxAge, Is.EqualTo(TimeSpan.FromHours(1)));

        var updated = await Js.UpdateStreamAsync(new StreamConfig { Name = name, Subjects = [$"{name}.>", $"{name}x.>"], MaxAge = TimeSpan.FromHours(1) });
        Assert.That(updated.Config!.Subjects, Has.Length.EqualTo(2));

        var info = await Js.GetStreamAsync(name);
        Assert.That(info.State!.Messages, Is.Zero);

        Assert.That(await Js.DeleteStreamAsync(name), Is.True);
        var ex = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.GetStreamAsync(name));
        Assert.That(ex!.ErrorCode, Is.EqualTo(10059));
        Assert.That(ex.Code, Is.EqualTo(404));
        Assert.That(ex.Message, Does.Contain("stream not found"));
    }

    [Test]
    public async Task CreateStream_SubjectsOverlap_ApiErrorWithCode()
    {
        var name = Unique("O");
        await Js.CreateStreamAsync(new StreamConfig { Name = name, Subjects = [$"{name}.a"] });

        var ex = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.CreateStreamAsync(new StreamConfig { Name = name + "b", Subjects = [$"{name}.a"] }));

        Assert.That(ex!.ErrorCode, Is.EqualTo(10065), ex.Message);
    }

    [Test]
    public async Task ConsumerCrud_CreateInfoDelete_NotFoundIs10014()
    {
        var stream = Unique("C");
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });

        var created = await Js.CreateConsumerAsync(stream, new ConsumerConfig { DurableName = "d1", AckPolicy = AckPolicy.Explicit, AckWait = TimeSpan.FromSeconds(7), MaxDeliver = 5 });

        Assert.That(created.Config!.AckPolicy, Is.EqualTo(AckPolicy.Explicit));
        Assert.That(created.Config.AckWait, Is.EqualTo(TimeSpan.FromSeconds(7)));
        var info = await Js.GetConsumerAsync(stream, "d1");
        Assert.That(info.Config!.MaxDeliver, Is.EqualTo(5));
        Assert.That(await Js.DeleteConsumerAsync(stream, "d1"), Is.True);
        var ex = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.GetConsumerAsync(stream, "d1"));
        Assert.That(ex!.ErrorCode, Is.EqualTo(JetStreamContext.ConsumerNotFound));
    }

    [Test]
    public async Task Publish_PubAckAndDuplicateByMsgId()
    {
        var stream = Unique("P");
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"], DuplicateWindow = TimeSpan.FromMinutes(1) });

        var first = await Js.PublishAsync($"{stream}.a", "one"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "id-1" });
        var again = await Js.PublishAsync($"{stream}.a", "one"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "id-1" });
        var second = await Js.PublishAsync($"{stream}.a", "two"u8.ToArray(), options: new JetStreamPublishOptions { MsgId = "id-2" });

        Assert.That(first.Stream, Is.EqualTo(stream));
        Assert.That(first.Seq, Is.EqualTo(1UL));
        Assert.That(first.Duplicate, Is.False);
        Assert.That(again.Duplicate, Is.True);
        Assert.That(again.Seq, Is.EqualTo(1UL));
        Assert.That(second.Seq, Is.EqualTo(2UL));
        Assert.That((await Js.GetStreamAsync(stream)).State!.Messages, Is.EqualTo(2UL));
    }

    [Test]
    public async Task Publish_ExpectedLastSequenceWrong_RejectedWith10071()
    {
        var stream = Unique("E");
        await Js.CreateStreamAsync(new StreamConfig { Name = stream, Subjects = [$"{stream}.>"] });
        await Js.PublishAsync($"{stream}.a", "x"u8.ToArray());

        var ok = await Js.PublishAsync($"{stream}.a", "y"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedLastSequence = 1 });
        var ex = await Assert.ThrowsAsync<JetStreamApiException>(() => Js.PublishAsync($"{stream}.a", "z"u8.ToArray(), options: new JetStreamPublishOptions { ExpectedLastSequence = 1 }));

        Assert.That(ok.Seq, Is.EqualTo(2UL));
        Assert.That(ex!.ErrorCode, Is.EqualTo(10071), ex.Message);
    }

    [Test]
    public async Task Publish_NoStreamForSubject_NoResponders()
    {
        var ex = await Assert.ThrowsAsync<NatsNoRespondersException>(() => Js.PublishAsync("no.stream.here", "x"u8.ToArray()));

        Assert.That(ex!.Message, Does.Contain("no.stream.here"));
    }
}

[NonParallelizable]
public class JetStreamDomainTests
{
    [TestCase(null, null, "$JS.API")]
    [TestCase("hub", null, "$JS.hub.API")]
    [TestCase(null, "$JS.other.API.", "$JS.other.API")]
    public async Task ApiPrefix_FromOptions(string? domain, string? prefix, string expected)
    {
        await using var connection = new NatsConnection(new NatsConnectionOptions { JetStreamDomain = domain, JetStreamApiPrefix = prefix });

        Assert.That(new JetStreamContext(connection).ApiPrefix, Is.EqualTo(expected));
    }

    [Test]
    public async Task ServerWithDomain_ApiThroughDomainPrefix_Works()
    {
        await using var server = await NatsServerProcess.StartAsync("jetstream { domain: hub }\n");
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.JetStreamDomain = "hub");
        var js = new JetStreamContext(connection);

        var info = await js.CreateStreamAsync(new StreamConfig { Name = "D", Subjects = ["d.>"] });
        var ack = await js.PublishAsync("d.x", "x"u8.ToArray());

        Assert.That(info.Config!.Name, Is.EqualTo("D"));
        Assert.That(ack.Domain, Is.EqualTo("hub"));
        Assert.That(ack.Seq, Is.EqualTo(1UL));
    }
}
