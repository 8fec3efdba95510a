using System.Text;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Handlers;

namespace Kawa.Dataflow.Tests.Cli.Handlers;

public class HandlerTests
{
    private static Message<EventRecord> Msg(string raw) => new(new EventRecord(Encoding.UTF8.GetBytes(raw)));

    private static async Task<EventRecord> Single(IHandler<EventRecord, EventRecord> handler, Message<EventRecord> message)
    {
        var output = await handler.HandleAsync(message);
        Assert.That(output.Count, Is.EqualTo(1));
        return output[0].Value;
    }

    [Test]
    public async Task Json_Object_BecomesTypedFieldsInOrder()
    {
        var record = await Single(ParseHandler.Json(), Msg("""{"level":"error","ms":12,"ratio":0.5,"ok":false,"user":null,"tags":["a","b"],"ctx":{"id":7}}"""));

        Assert.That(record.Names, Is.EqualTo(new[] { "level", "ms", "ratio", "ok", "user", "tags", "ctx" }));
        Assert.That(record["level"].AsString(), Is.EqualTo("error"));
        Assert.That(record["ms"].AsLong(), Is.EqualTo(12));
        Assert.That(record["ratio"].AsDouble(), Is.EqualTo(0.5));
        Assert.That(record["ok"].AsBool(), Is.False);
        Assert.That(record["user"].IsNull, Is.True);
        Assert.That(record["tags"].AsJson().GetArrayLength(), Is.EqualTo(2));
        Assert.That(record["ctx"].ToString(), Is.EqualTo("""{"id":7}"""));
    }

    [Test]
    public async Task Json_OutputMessage_KeepsKeyTopicAndAttributes()
    {
        var attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.Subject, "logs.app").Build();
        var input = new Message<EventRecord>(new EventRecord(Encoding.UTF8.GetBytes("{}")), "k", "t", attributes);

        var output = (await ParseHandler.Json().HandleAsync(input))[0];

        Assert.That(output.Key, Is.EqualTo("k"));
        Assert.That(output.Topic, Is.EqualTo("t"));
        Assert.That(output.Attributes.GetOrDefault(MessageAttributeKeys.Subject, ""), Is.EqualTo("logs.app"));
    }

    [TestCase("{\"a\":1", "invalid JSON")]
    [TestCase("not json", "invalid JSON")]
    [TestCase("[1,2]", "expected a JSON object, got array")]
    [TestCase("", "invalid JSON")]
    [TestCase("{\"a\":1} x", "invalid JSON")]
    [TestCase("{\"a\":1}{\"b\":2}", "invalid JSON")]
    [TestCase("\"text\"", "expected a JSON object, got string")]
    [TestCase("{\"\":1}", "a property has an empty name")]
    [TestCase("{\"a\":1,\"b\":[1,}", "invalid JSON")]
    public async Task Json_Invalid_ThrowsParseExceptionWithRawBytesAndLeavesRecord(string payload, string reason)
    {
        var raw = Encoding.UTF8.GetBytes(payload);
        var record = new EventRecord(raw).Set("kept", 1L);

        var ex = await Assert.ThrowsAsync<EventParseException>(async () => await ParseHandler.Json().HandleAsync(new Message<EventRecord>(record)));

        Assert.That(ex!.Format, Is.EqualTo("json"));
        Assert.That(ex.Reason, Does.StartWith(reason));
        Assert.That(ex.Raw.ToArray(), Is.EqualTo(raw), "the dead letter gets exactly the bytes that failed");
        Assert.That(record.Names, Is.EqualTo(new[] { "kept" }), "all-or-nothing: no field of the failed event was added");
    }

    [Test]
    public async Task Json_EventsOfDifferentShapesInTurn_EachGetsExactlyItsOwnNames()
    {
        // Names are reused by position between events of the same shape; different shapes must never mix.
        var handler = ParseHandler.Json();
        string[][] shapes =
        [
            ["ts", "level", "msg"],
            ["level", "ts"],
            ["ts", "lvl", "msg", "extra"],
            ["ts", "level", "msg"],
        ];

        foreach (var names in shapes)
        {
            var json = "{" + string.Join(",", names.Select((n, i) => $"\"{n}\":{i}")) + "}";
            var record = await Single(handler, Msg(json));

            Assert.That(record.Names, Is.EqualTo(names));
            Assert.That(names.Select(n => record[n].AsLong()), Is.EqualTo(Enumerable.Range(0, names.Length).Select(i => (long)i)));
        }
    }

    [Test]
    public async Task Json_SameShapeEvents_ChangingOneRecordNeverChangesAnother()
    {
        // Records of one shape share their names array; every change of a name must copy it first.
        var handler = ParseHandler.Json();
        var first = await Single(handler, Msg("""{"a":1,"b":2,"c":3}"""));
        var second = await Single(handler, Msg("""{"a":4,"b":5,"c":6}"""));
        var third = await Single(handler, Msg("""{"a":7,"b":8,"c":9}"""));
        var fourth = await Single(handler, Msg("""{"a":0,"b":0,"c":0}"""));

        first.Rename("a", "x");
        second.Remove("b");
        third.Set("d", 10L);
        fourth.EnsureCapacity(8);
        fourth.Rename("c", "z");

        Assert.That(first.Names, Is.EqualTo(new[] { "x", "b", "c" }));
        Assert.That(second.Names, Is.EqualTo(new[] { "a", "c" }));
        Assert.That(third.Names, Is.EqualTo(new[] { "a", "b", "c", "d" }));
        Assert.That(fourth.Names, Is.EqualTo(new[] { "a", "b", "z" }));
        var fifth = await Single(handler, Msg("""{"a":1,"b":2,"c":3}"""));
        Assert.That(fifth.Names, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That(second["c"].AsLong(), Is.EqualTo(6));
    }

    [Test]
    public async Task Json_EscapedNamesDuplicatesAndBigNumbers_ParsedLikeAJsonReader()
    {
        var record = await Single(ParseHandler.Json(), Msg("""{"a\u0062":1,"x":1,"x":2,"big":1e400,"int":9223372036854775807,"frac":1.0}"""));

        Assert.That(record.Names, Is.EqualTo(new[] { "ab", "x", "big", "int", "frac" }));
        Assert.That(record["x"].AsLong(), Is.EqualTo(2), "the last of duplicate names wins");
        Assert.That(double.IsPositiveInfinity(record["big"].AsDouble()), Is.True);
        Assert.That(record["int"].AsLong(), Is.EqualTo(long.MaxValue));
        Assert.That(record["frac"].Kind, Is.EqualTo(FieldKind.Double));
    }

    [Test]
    public async Task Regex_NamedGroups_BecomeFieldsWithTypeHints()
    {
        var handler = ParseHandler.Regex(
            @"^(?<at>\S+) (?<level>\w+) took=(?<ms>\d+) ratio=(?<r>[\d.]+) ok=(?<ok>\w+)(?: user=(?<user>\w+))?$",
            new Dictionary<string, string> { ["at"] = "timestamp", ["ms"] = "long", ["r"] = "double", ["ok"] = "bool" });

        var record = await Single(handler, Msg("2024-01-02T03:04:05+01:00 WARN took=15 ratio=0.25 ok=true\n"));

        Assert.That(record["at"].AsTimestamp(), Is.EqualTo(new DateTimeOffset(2024, 1, 2, 2, 4, 5, TimeSpan.Zero)));
        Assert.That(record["level"].AsString(), Is.EqualTo("WARN"));
        Assert.That(record["ms"].AsLong(), Is.EqualTo(15));
        Assert.That(record["r"].AsDouble(), Is.EqualTo(0.25));
        Assert.That(record["ok"].AsBool(), Is.True);
        Assert.That(record.TryGet("user", out var user) && user.IsNull, Is.True, "an unmatched optional group is null");
    }

    [Test]
    public async Task Regex_NoMatchOrBadType_ThrowsWithReason()
    {
        var handler = ParseHandler.Regex(@"^(?<n>\S+)$", new Dictionary<string, string> { ["n"] = "long" });

        var noMatch = await Assert.ThrowsAsync<EventParseException>(async () => await handler.HandleAsync(Msg("a b")));
        var badType = await Assert.ThrowsAsync<EventParseException>(async () => await handler.HandleAsync(Msg("abc")));

        Assert.That(noMatch!.Reason, Is.EqualTo("the line does not match the pattern"));
        Assert.That(badType!.Reason, Is.EqualTo("group 'n' is not a long: 'abc'"));
        Assert.That(Encoding.UTF8.GetString(badType.Raw.Span), Is.EqualTo("abc"));
    }

    private static EventRecord Sample() => new EventRecord()
        .Set("status", 503L).Set("path", "/api/users").Set("ratio", 0.75).Set("ok", false)
        .Set("ts", new DateTimeOffset(2015, 5, 17, 10, 0, 0, TimeSpan.Zero)).Set("code", "B20").Set("none", (string?)null).Set("text_status", "503");

    [TestCase("status", "==", "503", true)]
    [TestCase("status", "!=", "503", false)]
    [TestCase("status", ">=", "500", true)]
    [TestCase("status", "<", "500", false)]
    [TestCase("status", ">", "99", true, Description = "numeric, not text, comparison (\"503\" < \"99\" as text)")]
    [TestCase("ratio", "<=", "0.75", true)]
    [TestCase("path", "startsWith", "/api/", true)]
    [TestCase("path", "contains", "users", true)]
    [TestCase("path", "contains", "Users", false)]
    [TestCase("path", "==", "/api/users", true)]
    [TestCase("code", ">", "B100", true, Description = "ordinal text when the value is not numeric")]
    [TestCase("text_status", ">", "99", true, Description = "numeric text compares as a number")]
    [TestCase("text_status", "==", "503.0", true)]
    [TestCase("ok", "==", "false", true)]
    [TestCase("ts", ">", "2015-05-17T09:59:59Z", true)]
    [TestCase("ts", "<", "2015-05-17T11:00:00+02:00", false)]
    [TestCase("path", "exists", null, true)]
    [TestCase("missing", "exists", null, false)]
    [TestCase("none", "exists", null, false)]
    [TestCase("missing", "==", "x", false)]
    [TestCase("missing", "!=", "x", true)]
    public void Filter_Condition_MatchesAsDocumented(string field, string op, string? value, bool expected)
    {
        var filter = new FilterHandler([(field, op, value)]);

        Assert.That(filter.Matches(Sample()), Is.EqualTo(expected));
    }

    [Test]
    public async Task Filter_AllVersusAny_CombineConditions()
    {
        (string, string, string?)[] conditions = [("status", ">=", "500"), ("path", "startsWith", "/static")];

        var all = await new FilterHandler(conditions).HandleAsync(new Message<EventRecord>(Sample()));
        var any = await new FilterHandler(conditions, any: true).HandleAsync(new Message<EventRecord>(Sample()));

        Assert.That(all.IsEmpty, Is.True, "filtered out: no output, so the pipeline acks the input");
        Assert.That(any.Count, Is.EqualTo(1));
    }

    [Test]
    public async Task Fields_RenameDropAddIngestTimeAndHost_AppliedInOrder()
    {
        var now = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        var options = new FieldsHandlerOptions
        {
            Rename = { ["agent"] = "user_agent", ["absent"] = "whatever" },
            Drop = { "ident", "absent2" },
            Add = { ["env"] = "prod", ["status"] = "overridden" },
            IngestTime = "ingested_at",
            HostName = "host_name",
        };
        var handler = new FieldsHandler(options, new FixedTime(now), "box-1");
        var record = new EventRecord().Set("ident", (string?)null).Set("agent", "curl").Set("status", 200L);

        var output = await Single(handler, new Message<EventRecord>(record));

        Assert.That(output.Names, Is.EqualTo(new[] { "user_agent", "status", "env", "ingested_at", "host_name" }));
        Assert.That(output["user_agent"].AsString(), Is.EqualTo("curl"));
        Assert.That(output["status"].AsString(), Is.EqualTo("overridden"));
        Assert.That(output["ingested_at"].AsTimestamp(), Is.EqualTo(now));
        Assert.That(output["host_name"].AsString(), Is.EqualTo("box-1"));
    }

    [Test]
    public async Task Factory_ValidatedExampleHandlers_RunInSequence()
    {
        var result = ConfigLoader.Load(Path.Combine(TestPaths.RepoRoot, "examples", "access-log-to-parquet.json"), useEnvironment: false, baseDirectory: TestPaths.RepoRoot);
        Assert.That(result.Errors, Is.Empty);
        var handlers = result.Options!.Pipeline!.Handlers.Select(h => HandlerFactory.Create(h!)).ToList();
        var message = Msg(File.ReadLines(Path.Combine(TestPaths.RepoRoot, "samples", "access.log")).First());

        foreach (var handler in handlers)
        {
            message = (await handler.HandleAsync(message))[0];
        }

        Assert.That(message.Value.Contains("ts"), Is.True);
        Assert.That(message.Value.Contains("status"), Is.True);
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
