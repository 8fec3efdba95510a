using System.Collections.Concurrent;
using System.Text.Json;
using Kawa.Dataflow.Tests.Core.Pipeline;
using Kawa.Dataflow.Tests.Parquet;

namespace Kawa.Dataflow.Tests.Docs.Writing;

// The types the README's "Writing a Source / Handler / Destination" snippets assume.
public sealed record QueueItem(string Id, string Queue, string? Key, long Attempts, byte[] Body);

public interface IMyQueueClient
{
    Task<QueueItem?> NextAsync(CancellationToken cancellationToken);

    void Delete(string id);

    void Release(string id, TimeSpan delay);

    void Bury(string id);
}

public sealed record OrderLine(string Sku, int Quantity);

public sealed record Order(string Id, bool Paid, OrderLine[] Lines);

public interface IMyTable
{
    Task InsertAsync(Order order, CancellationToken cancellationToken);
}

// AppJson, the application's JSON context, is in ReadmeExampleTests.cs (one context for the README's examples).

// ---- README: Writing a Source ----------------------------------------------------------------------------------------
public sealed class QueueSource(IMyQueueClient client) : ISource<byte[]>
{
    public async ValueTask<Delivery<byte[]>> ReceiveAsync(CancellationToken cancellationToken = default)
    {
        var item = await client.NextAsync(cancellationToken).ConfigureAwait(false);
        if (item is null)
        {
            return Delivery<byte[]>.EndOfStream;          // a finite source lets a batch job finish
        }

        var attributes = MessageAttributes.CreateBuilder()
            .Set(MessageAttributeKeys.Subject, item.Queue)
            .Set(MessageAttributeKeys.DeliveryCount, item.Attempts)
            .Build();
        var ack = AckToken.Create(outcome =>
        {
            switch (outcome.Kind)
            {
                case AckKind.Ack: client.Delete(item.Id); break;
                case AckKind.Nack: client.Release(item.Id, outcome.Delay); break;
                case AckKind.Terminate: client.Bury(item.Id); break;
            }
        });
        return new Delivery<byte[]>(new Message<byte[]>(item.Body, Key: item.Key, Attributes: attributes), ack);
    }
}

// ---- README: Writing a Destination -----------------------------------------------------------------------------------
public sealed class TableDestination(IMyTable table) : IDestination<Order>
{
    public async ValueTask SendAsync(AckToken ack, Messages<Order> messages, CancellationToken cancellationToken = default)
    {
        foreach (var message in messages)
        {
            await table.InsertAsync(message.Value, cancellationToken).ConfigureAwait(false);
        }

        ack.Ack();                                          // only now: the rows are committed
    }
}

/// <summary>
/// The README's "Writing a Source / Handler / Destination" snippets: compiled here as written (a test fails if the
/// README's text and this file differ) and run in pipelines, so the guide a user copies from is known to work.
/// </summary>
public class ReadmeWritingTests
{
    private static string ThisFile => Path.Combine(DuckDb.Root, "Kawa.Dataflow.Tests", "Docs", "ReadmeWritingTests.cs");

    [TestCase("## Writing a Source")]
    [TestCase("## Writing a Handler")]
    [TestCase("## Writing a Destination")]
    public void Readme_WritingSection_IsTheCodeThisFileRuns(string heading)
    {
        var readme = File.ReadAllText(Path.Combine(DuckDb.Root, "README.md"));
        var section = readme.IndexOf(heading + "\n", StringComparison.Ordinal);
        Assert.That(section, Is.GreaterThan(0), $"README has a '{heading}' section");
        var start = readme.IndexOf("```csharp\n", section, StringComparison.Ordinal) + "```csharp\n".Length;
        var end = readme.IndexOf("```", start, StringComparison.Ordinal);
        var next = readme.IndexOf("\n## ", section + heading.Length, StringComparison.Ordinal);
        Assert.That(start, Is.LessThan(next < 0 ? int.MaxValue : next), $"'{heading}' has a C# example");

        Assert.That(Normalize(File.ReadAllText(ThisFile)), Does.Contain(Normalize(readme[start..end])), $"README's '{heading}' example differs from {nameof(ReadmeWritingTests)}: change both");
    }

    [Test]
    public async Task QueueSource_InAPipeline_SettlesEachItemOnTheQueueAndCarriesItsAttributes()
    {
        var client = new FakeQueue(
            new QueueItem("1", "orders", "k1", 1, [1]),
            new QueueItem("2", "orders", "k2", 3, [2]),
            new QueueItem("3", "orders", null, 1, [3]));
        var seen = new ConcurrentQueue<Message<byte[]>>();
        var pipeline = Pipeline.Create("readme-queue-source")
            .From(new QueueSource(client))
            .To(new DestinationFunc<byte[]>((ack, messages, _) =>
            {
                seen.Enqueue(messages[0]);
                switch (messages[0].Value[0])
                {
                    case 1: ack.Ack(); break;
                    case 2: ack.Nack(TimeSpan.FromSeconds(7)); break;
                    default: ack.Terminate(); break;
                }

                return default;
            }))
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(client.Log.Order(), Is.EqualTo(new[] { "bury 3", "delete 1", "release 2 after 00:00:07" }));
        var second = seen.Single(m => m.Key == "k2");
        Assert.That(second.Attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("orders"));
        Assert.That(second.Attributes.GetOrDefault(MessageAttributeKeys.DeliveryCount), Is.EqualTo(3));
    }

    [Test]
    public async Task HandlerAndDestination_InAPipeline_ParseFilterSplitThenInsertAndAck()
    {
        // ---- README: Writing a Handler ----
        var parse = Handler.Map<byte[], Order>(m => m.With(JsonSerializer.Deserialize(m.Value, AppJson.Default.Order)!));
        var onlyPaid = Handler.Filter<Order>(m => m.Value.Paid);             // dropped messages are acked
        var split = Handler.Create<Order, OrderLine>((m, ct) =>
            ValueTask.FromResult<Messages<OrderLine>>(m.Value.Lines.Select(m.With).ToArray()));
        // ---- end ----

        var orders = new[]
        {
            new Order("o1", true, [new OrderLine("apple", 2), new OrderLine("pear", 1)]),
            new Order("o2", false, [new OrderLine("plum", 5)]),
        };
        var source = new TestSource<byte[]>([.. orders.Select(o => new Message<byte[]>(JsonSerializer.SerializeToUtf8Bytes(o, AppJson.Default.Order), Key: o.Id))]);
        var lines = new RecordingDestination<OrderLine>();
        var table = new FakeTable();
        var pipeline = Pipeline.Create("readme-handlers")
            .From(source)
            .Handle("parse", parse)
            .Handle("paid", onlyPaid)
            .Handle("split", split)
            .To(lines)
            .Build();
        var tablePipeline = Pipeline.Create("readme-table")
            .From(new TestSource<Order>([.. orders.Select(o => new Message<Order>(o, Key: o.Id))]))
            .To(new TableDestination(table))
            .Build();

        await pipeline.RunAsync().WaitAsync(TestMessages.Generous);
        await tablePipeline.RunAsync().WaitAsync(TestMessages.Generous);

        Assert.That(lines.Written.Select(m => (m.Key, m.Value.Sku)), Is.EquivalentTo(new[] { ("o1", "apple"), ("o1", "pear") }), "With keeps the key");
        Assert.That(source.Tokens.Select(t => t.Outcome), Is.All.EqualTo(AckOutcome.Acked), "the unpaid order is acked though nothing was written for it");
        Assert.That(table.Rows.Select(o => o.Id), Is.EqualTo(new[] { "o1", "o2" }));
    }

    [Test]
    public async Task TableDestination_InsertFails_RunFailsAndTheMessageIsNotAcked()
    {
        var table = new FakeTable { FailOn = "o2" };
        var source = new TestSource<Order>([new Message<Order>(new Order("o1", true, [])), new Message<Order>(new Order("o2", true, []))]);
        var pipeline = Pipeline.Create("readme-table-fails")
            .From(source)
            .To(new TableDestination(table))
            .Build(new PipelineOptions { SegmentSize = 1 });

        var error = await Assert.ThrowsAsync<PipelineStageException>(() => pipeline.RunAsync().WaitAsync(TestMessages.Generous));

        Assert.That(error!.Stage, Is.EqualTo("destination"));
        Assert.That(source.Tokens.Single(t => t.Id == 1).Outcome, Is.EqualTo(AckOutcome.Negative()), "a throwing destination: the pipeline negatively acks");
        Assert.That(source.Tokens.Single(t => t.Id == 0).Outcome, Is.EqualTo(AckOutcome.Acked));
    }

    private static string Normalize(string code)
        => string.Join('\n', code.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0));

    private sealed class FakeQueue(params QueueItem[] items) : IMyQueueClient
    {
        private readonly Queue<QueueItem> _items = new(items);

        public ConcurrentQueue<string> Log { get; } = new();

        public Task<QueueItem?> NextAsync(CancellationToken cancellationToken)
            => Task.FromResult(_items.TryDequeue(out var item) ? item : null);

        public void Delete(string id) => Log.Enqueue($"delete {id}");

        public void Release(string id, TimeSpan delay) => Log.Enqueue($"release {id} after {delay}");

        public void Bury(string id) => Log.Enqueue($"bury {id}");
    }

    private sealed class FakeTable : IMyTable
    {
        public ConcurrentQueue<Order> Rows { get; } = new();

        public string? FailOn { get; init; }

        public Task InsertAsync(Order order, CancellationToken cancellationToken)
        {
            if (order.Id == FailOn)
            {
                throw new IOException("table unavailable");
            }

            Rows.Enqueue(order);
            return Task.CompletedTask;
        }
    }
}
