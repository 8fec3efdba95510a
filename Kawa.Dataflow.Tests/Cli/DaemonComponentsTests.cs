using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Running;

namespace Kawa.Dataflow.Tests.Cli;

public class DaemonComponentsTests
{
    // Drives source → handlers → destination one message at a time: a stand-in for the pipeline engine, enough to
    // show the configured components fit together and settle every token.
    private static async Task<(int Delivered, List<AckOutcome> Outcomes)> PumpAsync(ISource<EventRecord> source, IReadOnlyList<HandlerStage> stages, IDestination<EventRecord> destination)
    {
        var outcomes = new List<AckOutcome>();
        var delivered = 0;
        while (true)
        {
            var delivery = await source.ReceiveAsync();
            if (delivery.IsEndOfStream)
            {
                return (delivered, outcomes);
            }

            delivered++;
            Messages<EventRecord> current = delivery.Message;
            foreach (var stage in stages)
            {
                current = current.IsEmpty ? current : await stage.Handler.HandleAsync(current[0]);
            }

            if (current.IsEmpty)
            {
                delivery.Ack.Ack();
            }
            else
            {
                await destination.SendAsync(delivery.Ack, current);
            }

            outcomes.Add(delivery.Ack.Outcome!.Value);
        }
    }

    [Test]
    public async Task FileToStdout_SampleLogThroughCombinedFilterFields_WritesOnlyServerErrors()
    {
        var dir = Directory.CreateTempSubdirectory("kawa-components-").FullName;
        try
        {
            var config = Path.Combine(dir, "k.json");
            File.WriteAllText(config, $$"""
                { "pipeline": { "name": "t",
                    "source": { "type": "file", "path": {{JsonSerializer.Serialize(Path.Combine(TestPaths.RepoRoot, "samples", "access.log"))}} },
                    "handlers": [
                      { "type": "parse", "format": "combined" },
                      { "type": "filter", "conditions": [ { "field": "status", "op": ">=", "value": "500" } ] },
                      { "type": "fields", "drop": [ "ident", "user" ], "add": { "env": "test" } } ],
                    "destination": { "type": "stdout", "format": "json" } } }
                """);
            var options = ConfigLoader.Load(config, useEnvironment: false).Options!.Pipeline!;
            using var stdout = new MemoryStream();

            await using var source = (Kawa.Dataflow.Cli.Sources.LineSource)DaemonComponents.CreateSource(options.Source!);
            var (delivered, outcomes) = await PumpAsync(source, DaemonComponents.CreateHandlers(options), DaemonComponents.CreateDestination(options.Destination!, stdout));

            var lines = Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
            var expected = File.ReadLines(Path.Combine(TestPaths.RepoRoot, "samples", "access.log")).Count(l => l.Split('"')[2].Trim().StartsWith('5'));
            Assert.That(delivered, Is.EqualTo(500));
            Assert.That(outcomes, Has.All.EqualTo(AckOutcome.Acked), "filtered-out lines are acked too");
            Assert.That(lines, Has.Length.EqualTo(expected).And.Length.GreaterThan(0));
            using var first = JsonDocument.Parse(lines[0]);
            Assert.That(first.RootElement.GetProperty("status").GetInt64(), Is.GreaterThanOrEqualTo(500));
            Assert.That(first.RootElement.GetProperty("env").GetString(), Is.EqualTo("test"));
            Assert.That(first.RootElement.TryGetProperty("ident", out _), Is.False);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Test]
    public async Task CreateHandlers_NdjsonStdin_PrependsJsonParseThatDeadLettersWhenConfigured()
    {
        var json = """
            { "pipeline": { "name": "t", "source": { "type": "stdin", "format": "ndjson" },
                "handlers": [ { "type": "filter", "conditions": [ { "field": "level", "op": "==", "value": "error" } ] } ],
                "destination": { "type": "stdout" }, "deadLetter": { "type": "stdout", "format": "raw" } } }
            """;
        var options = ConfigLoader.Load(Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false).Options!.Pipeline!;
        using var stdin = new MemoryStream("{\"level\":\"error\",\"n\":1}\n{\"level\":\"info\"}\n"u8.ToArray());
        using var stdout = new MemoryStream();

        var stages = DaemonComponents.CreateHandlers(options);
        var (delivered, _) = await PumpAsync(DaemonComponents.CreateSource(options.Source!, stdin), stages, DaemonComponents.CreateDestination(options.Destination!, stdout));

        Assert.That(stages.Select(s => s.Name), Is.EqualTo(new[] { "ndjson", "filter-0" }));
        Assert.That(stages[0].Options.ErrorPolicy.Type, Is.EqualTo("deadLetter"));
        Assert.That(delivered, Is.EqualTo(2));
        Assert.That(Encoding.UTF8.GetString(stdout.ToArray()), Is.EqualTo("{\"level\":\"error\",\"n\":1}\n"));
    }

    [Test]
    public void CreateHandlers_NdjsonBeforeOrderedHandlersAtParallelismThree_ParseStageRunsAtThreeOrdered()
    {
        var stages = DaemonComponents.CreateHandlers(NdjsonPipeline("""
            { "type": "fields", "add": { "env": "a" }, "parallelism": 3, "capacity": 600 },
            { "type": "fields", "add": { "env": "b" }, "parallelism": 5, "ordered": false }
            """));

        var parse = DaemonRunner.ToStageOptions(stages[0].Options, segmentSize: 256, deadLetters: null, stages[0].Name);

        Assert.Multiple(() =>
        {
            Assert.That(stages[0].Name, Is.EqualTo("ndjson"));
            Assert.That(parse.MaxDegreeOfParallelism, Is.EqualTo(3), "the first handler's parallelism, not the second's");
            Assert.That(parse.EnsureOrdered, Is.True);
            Assert.That(parse.KeyOrdered, Is.False);
            Assert.That(parse.BoundedCapacity, Is.EqualTo(3), "the first handler's capacity (600 messages = 3 segments)");
        });
    }

    [Test]
    public void CreateHandlers_NdjsonBeforeUnorderedHandler_ParseStageIsUnorderedAtItsParallelism()
    {
        var stages = DaemonComponents.CreateHandlers(NdjsonPipeline("""{ "type": "fields", "add": { "env": "a" }, "parallelism": 2, "ordered": false }"""));

        var parse = DaemonRunner.ToStageOptions(stages[0].Options, segmentSize: 256, deadLetters: null, stages[0].Name);

        Assert.That((parse.MaxDegreeOfParallelism, parse.EnsureOrdered), Is.EqualTo((2, false)));
    }

    [Test]
    public void CreateHandlers_NdjsonBeforeKeyOrderedHandler_ParseStageKeepsArrivalOrderWithoutKeys()
    {
        var stages = DaemonComponents.CreateHandlers(NdjsonPipeline("""{ "type": "fields", "add": { "env": "a" }, "parallelism": 4, "ordered": false, "keyOrdered": true }"""));

        var parse = DaemonRunner.ToStageOptions(stages[0].Options, segmentSize: 256, deadLetters: null, stages[0].Name);

        Assert.Multiple(() =>
        {
            Assert.That(parse.MaxDegreeOfParallelism, Is.EqualTo(4));
            Assert.That(parse.KeyOrdered, Is.False, "no message has a key before it is parsed");
            Assert.That(parse.EnsureOrdered, Is.True, "'ordered: false' is ignored beside keyOrdered, so the parse keeps order");
        });
    }

    [Test]
    public void CreateHandlers_NdjsonWithoutHandlers_ParseStageAtParallelismOneOrdered()
    {
        var stages = DaemonComponents.CreateHandlers(NdjsonPipeline(""));

        var parse = DaemonRunner.ToStageOptions(stages.Single().Options, segmentSize: 256, deadLetters: null, stages[0].Name);

        Assert.That((parse.MaxDegreeOfParallelism, parse.EnsureOrdered, parse.KeyOrdered), Is.EqualTo((1, true, false)));
    }

    private static KawaPipelineOptions NdjsonPipeline(string handlers)
    {
        var json = $$"""
            { "pipeline": { "name": "t", "source": { "type": "stdin", "format": "ndjson" },
                "handlers": [ {{handlers}} ], "destination": { "type": "stdout" } } }
            """;
        var config = ConfigLoader.Load(Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);
        Assert.That(config.Errors, Is.Empty);
        return config.Options!.Pipeline!;
    }

    [Test]
    public void Create_AdapterTypes_SayTheyAreNotAvailable()
    {
        var ex = Assert.Throws<NotSupportedException>(() => DaemonComponents.CreateDestination(new ParquetDestinationOptions { Type = "parquet" }));

        Assert.That(ex!.Message, Is.EqualTo("destination type 'parquet' is not available in this build"));
    }
}
