namespace Kawa.Dataflow.Tests.Core.Pipeline;

/// <summary>A failed message on its last delivery must not be nacked into oblivion: the stage's poison policy settles it.</summary>
public class PoisonPolicyTests
{
    private sealed class Boom(string message) : Exception(message);

    private static Message<int> Message(int value, bool lastDelivery)
        => new(value, Attributes: MessageAttributes.CreateBuilder(1).Set(MessageAttributeKeys.LastDelivery, lastDelivery).Build());

    private static async Task<TestSource<int>> RunAsync(StageOptions stage, params Message<int>[] messages)
    {
        var source = new TestSource<int>(messages);
        var pipeline = Kawa.Dataflow.Pipeline.Create("poison")
            .From(source)
            .Handle<int>("work", (m, _) => m.Value < 0 ? throw new Boom("cannot handle " + m.Value) : new ValueTask<Messages<int>>(m), stage)
            .To(new RecordingDestination<int>())
            .Build();
        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);
        return source;
    }

    [Test]
    public async Task NegativeAck_FailureOnLastDelivery_TerminatedByDefault()
    {
        var source = await RunAsync(new StageOptions { ErrorPolicy = ErrorPolicy.NegativeAck(TimeSpan.FromSeconds(5)) }, Message(-1, lastDelivery: true), Message(-2, lastDelivery: false), Message(3, lastDelivery: true));

        var outcomes = source.Tokens.OrderBy(t => t.Id).Select(t => t.Outcome).ToArray();
        Assert.That(outcomes[0], Is.EqualTo(AckOutcome.Terminated), "last delivery: a nack would lose it");
        Assert.That(outcomes[1], Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(5))), "not the last delivery: redelivered as the policy says");
        Assert.That(outcomes[2], Is.EqualTo(AckOutcome.Acked), "a last delivery that succeeds is simply acked");
    }

    [Test]
    public async Task RetryThenNegativeAck_FailureOnLastDelivery_RetriesFirstThenPoisonPolicy()
    {
        var attempts = 0;
        var source = new TestSource<int>(new[] { Message(-1, lastDelivery: true) });
        var pipeline = Kawa.Dataflow.Pipeline.Create("poison-retry")
            .From(source)
            .Handle<int>("work", (_, _) =>
            {
                attempts++;
                throw new Boom("still failing");
            }, new StageOptions { ErrorPolicy = ErrorPolicy.Retry(2, TimeSpan.Zero, TimeSpan.Zero).Then(ErrorPolicy.NegativeAck()), PoisonPolicy = ErrorPolicy.Skip })
            .To(new RecordingDestination<int>())
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(attempts, Is.EqualTo(3));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Acked), "Skip as poison policy acks");
    }

    [Test]
    public async Task PoisonDeadLetter_WrittenThenOriginalTerminatedNotAcked()
    {
        var records = new List<DeadLetter<int>>();
        var dlq = new DestinationFunc<DeadLetter<int>>((ack, messages, _) =>
        {
            foreach (var m in messages)
            {
                records.Add(m.Value);
            }

            ack.Ack();
            return default;
        });

        var source = await RunAsync(new StageOptions { ErrorPolicy = ErrorPolicy.NegativeAck(), PoisonPolicy = ErrorPolicy.DeadLetter(dlq) }, Message(-7, lastDelivery: true));

        Assert.That(records.Single().Original.Value, Is.EqualTo(-7));
        Assert.That(records.Single().Reason, Is.EqualTo("cannot handle -7"));
        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Terminated), "the source learns it is poison, not that it succeeded");
    }

    [Test]
    public async Task PoisonDeadLetter_DeadLetterWriteFails_OriginalNacked()
    {
        var dlq = new DestinationFunc<DeadLetter<int>>((_, _, _) => throw new Boom("dlq down"));

        var source = await RunAsync(new StageOptions { ErrorPolicy = ErrorPolicy.NegativeAck(), PoisonPolicy = ErrorPolicy.DeadLetter(dlq) }, Message(-7, lastDelivery: true));

        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Negative()), "not written anywhere: never acked or terminated");
    }

    [Test]
    public async Task Terminate_FailureOnLastDelivery_PoisonPolicyNotConsulted()
    {
        var dlq = new DestinationFunc<DeadLetter<int>>((_, _, _) => throw new AssertionException("the poison policy must not run"));

        var source = await RunAsync(new StageOptions { ErrorPolicy = ErrorPolicy.Terminate, PoisonPolicy = ErrorPolicy.DeadLetter(dlq) }, Message(-1, lastDelivery: true));

        Assert.That(source.Tokens.Single().Outcome, Is.EqualTo(AckOutcome.Terminated));
    }

    [Test]
    public void Build_PoisonPolicyThatNacks_RefusedWithItsPath()
    {
        var definition = Kawa.Dataflow.Pipeline.Create("poison-invalid")
            .From(new TestSource<int>(Array.Empty<Message<int>>()))
            .Handle<int>("work", (m, _) => new ValueTask<Messages<int>>(m), new StageOptions { PoisonPolicy = ErrorPolicy.Retry(1).Then(ErrorPolicy.NegativeAck()) })
            .To(new RecordingDestination<int>());

        var error = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => definition.Build());

        Assert.That(error!.Message, Does.Contain("PoisonPolicy").And.Contain("work"));
    }
}
