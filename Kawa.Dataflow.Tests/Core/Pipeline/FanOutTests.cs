namespace Kawa.Dataflow.Tests.Core.Pipeline;

public class FanOutTests
{
    private static async Task<RecordingToken> RunFanOutAsync(string name, Func<int, AckToken, bool> settle)
    {
        var source = new TestSource<int>(TestMessages.Ints(1));
        var pipeline = Kawa.Dataflow.Pipeline.Create(name)
            .From(source)
            .Handle<int>("split", (m, _) => new ValueTask<Messages<int>>(new[] { m.With(0), m.With(1), m.With(2) }))
            .To(new DestinationFunc<int>((ack, messages, _) =>
            {
                settle(messages.Single().Value, ack);
                return default;
            }))
            .Build();
        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);
        return source.Tokens.Single();
    }

    [Test]
    public async Task FanOut_AllChildrenAcked_ParentAckedOnce()
    {
        var sends = 0;
        var parent = await RunFanOutAsync("fanout-acked", (_, ack) =>
        {
            Interlocked.Increment(ref sends);
            ack.Ack();
            return true;
        });

        Assert.That(sends, Is.EqualTo(3));
        Assert.That(parent.Outcome, Is.EqualTo(AckOutcome.Acked));
        Assert.That(parent.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task FanOut_ChildrenNackedWithDelays_ParentNackedWithLargestDelay()
    {
        var parent = await RunFanOutAsync("fanout-nacked", (part, ack) =>
        {
            switch (part)
            {
                case 0: ack.Nack(TimeSpan.FromSeconds(2)); break;
                case 1: ack.Ack(); break;
                default: ack.Nack(TimeSpan.FromSeconds(5)); break;
            }

            return true;
        });

        Assert.That(parent.Outcome, Is.EqualTo(AckOutcome.Negative(TimeSpan.FromSeconds(5))));
        Assert.That(parent.Completions, Is.EqualTo(1));
    }

    [Test]
    public async Task FanOut_ChildTerminated_ParentNackedNotTerminated()
    {
        var parent = await RunFanOutAsync("fanout-terminated", (part, ack) =>
        {
            if (part == 1)
            {
                ack.Terminate();
            }
            else
            {
                ack.Ack();
            }

            return true;
        });

        Assert.That(parent.Outcome, Is.EqualTo(AckOutcome.Negative()));
    }

    [Test]
    public void FanOutGroup_ParentSettledOnlyAfterLastChild()
    {
        var parent = new RecordingToken(0);
        var group = new FanOutGroup(parent, 2);
        var first = new FanOutChildToken(group);
        var second = new FanOutChildToken(group);

        first.Ack();
        Assert.That(parent.IsCompleted, Is.False);
        second.Ack();

        Assert.That(parent.Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task FanOut_SingleOutput_PassesSameTokenThrough()
    {
        var source = new TestSource<int>(TestMessages.Ints(3));
        var seen = new List<AckToken>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("fanout-single")
            .From(source)
            .Handle("pipe", Handler.Pipe<int>())
            .To(new DestinationFunc<int>((ack, _, _) =>
            {
                seen.Add(ack);
                ack.Ack();
                return default;
            }))
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(seen, Is.EqualTo(source.Tokens.Cast<AckToken>()));
    }

    [Test]
    public async Task Handle_SameTypeMixedZeroOneManyOutputs_EveryOutputDeliveredInOrder()
    {
        // Same input and output type: outputs are written over the input segment while they do not overtake it.
        static int Outputs(int value) => value % 7 == 0 ? 0 : value % 5 == 0 ? 3 : 1;
        var source = new TestSource<int>(TestMessages.Ints(1000));
        var destination = new RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("fanout-in-place")
            .From(source)
            .Handle<int>("mix", (m, _) => new ValueTask<Messages<int>>(Enumerable.Range(0, Outputs(m.Value)).Select(k => m.With((m.Value * 10) + k)).ToArray()))
            .Handle("pipe", Handler.Pipe<int>())
            .To(destination)
            .Build(new PipelineOptions { SegmentSize = 16 });

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        var expected = Enumerable.Range(0, 1000).SelectMany(v => Enumerable.Range(0, Outputs(v)).Select(k => (v * 10) + k));
        Assert.That(destination.Written.Select(m => m.Value), Is.EqualTo(expected));
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked));
    }
}
