using System.Runtime.CompilerServices;

namespace Kawa.Dataflow.Tests.Core.Sources;

public class EnumerableSourceTests
{
    [Test]
    public async Task ReceiveAsync_Sequence_DeliversEachThenEndOfStreamRepeatedly()
    {
        var source = Kawa.Dataflow.Sources.FromValues(new[] { "a", "b" });

        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo("a"));
        Assert.That((await source.ReceiveAsync()).Message.Value, Is.EqualTo("b"));
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That((await source.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task ReceiveAsync_EmptySequences_EndAtOnce()
    {
        var fromValues = Kawa.Dataflow.Sources.FromValues(Array.Empty<int>());
        var fromAsync = new EnumerableSource<int>(AsyncEnumerable.Empty<Message<int>>());

        Assert.That((await fromValues.ReceiveAsync()).IsEndOfStream, Is.True);
        Assert.That((await fromAsync.ReceiveAsync()).IsEndOfStream, Is.True);
    }

    [Test]
    public async Task RunAsync_AsyncSequence_EveryItemWrittenAndAckedThenTheRunCompletes()
    {
        async IAsyncEnumerable<Message<int>> Produce()
        {
            for (var i = 0; i < 500; i++)
            {
                if (i % 50 == 0)
                {
                    await Task.Yield();
                }

                yield return new Message<int>(i, Key: "k" + (i % 7));
            }
        }

        var outcomes = new System.Collections.Concurrent.ConcurrentQueue<AckOutcome>();
        var destination = new Kawa.Dataflow.Tests.Core.Pipeline.RecordingDestination<int>();
        var pipeline = Kawa.Dataflow.Pipeline.Create("async-enumerable")
            .From(new EnumerableSource<int>(Produce(), (_, outcome) => outcomes.Enqueue(outcome)))
            .Handle("pipe", Handler.Pipe<int>(), new StageOptions { MaxDegreeOfParallelism = 3, KeyOrdered = true })
            .To(destination)
            .Build();

        await pipeline.RunAsync().WaitAsync(TimeSpan.FromSeconds(30));

        Assert.That(destination.Written.Select(m => m.Value).Order(), Is.EqualTo(Enumerable.Range(0, 500)));
        Assert.That(outcomes, Has.Count.EqualTo(500).And.All.EqualTo(AckOutcome.Acked));
    }

    [Test]
    public async Task ReceiveAsync_IsLazy_EnumeratesOneItemPerReceive()
    {
        var produced = 0;
        IEnumerable<Message<int>> Produce()
        {
            for (var i = 0; i < 100; i++)
            {
                produced++;
                yield return new Message<int>(i);
            }
        }

        var source = new EnumerableSource<int>(Produce());
        await source.ReceiveAsync();
        await source.ReceiveAsync();

        Assert.That(produced, Is.EqualTo(2));
    }

    [Test]
    public async Task ReceiveAsync_CancelledWhileWaiting_NextReceiveGetsTheItemNotLost()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async IAsyncEnumerable<Message<int>> Slow([EnumeratorCancellation] CancellationToken ct = default)
        {
            await gate.Task.WaitAsync(ct);
            yield return new Message<int>(42);
        }

        var source = new EnumerableSource<int>(Slow());
        using var cts = new CancellationTokenSource();
        var first = source.ReceiveAsync(cts.Token).AsTask();
        await cts.CancelAsync();
        Assert.That(async () => await first, Throws.InstanceOf<OperationCanceledException>());

        gate.SetResult();
        var delivery = await source.ReceiveAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.That(delivery.Message.Value, Is.EqualTo(42));
    }

    [Test]
    public void ReceiveAsync_SequenceThrows_IsFatal()
    {
        static IEnumerable<Message<int>> Broken()
        {
            yield return new Message<int>(1);
            throw new InvalidOperationException("broken sequence");
        }

        var source = new EnumerableSource<int>(Broken());

        Assert.That(async () => { await source.ReceiveAsync(); await source.ReceiveAsync(); }, Throws.InvalidOperationException.With.Message.EqualTo("broken sequence"));
    }

    [Test]
    public async Task ReceiveAsync_Settled_OutcomeReachesCallback()
    {
        AckOutcome? seen = null;
        var source = new EnumerableSource<int>(new[] { new Message<int>(1) }, (_, o) => seen = o);

        (await source.ReceiveAsync()).Ack.Terminate();

        Assert.That(seen, Is.EqualTo(AckOutcome.Terminated));
    }

    [Test]
    public async Task DisposeAsync_Early_DisposesEnumerator()
    {
        var disposed = false;
        IEnumerable<Message<int>> Produce()
        {
            try
            {
                yield return new Message<int>(1);
                yield return new Message<int>(2);
            }
            finally
            {
                disposed = true;
            }
        }

        var source = new EnumerableSource<int>(Produce());
        await source.ReceiveAsync();
        await source.DisposeAsync();

        Assert.That(disposed, Is.True);
    }
}
