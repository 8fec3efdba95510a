using System.Text;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Mapping;

namespace Kawa.Dataflow.Tests.Cli.Mapping;

public class ColumnMapperTests
{
    private static readonly DateTimeOffset s_received = new(2026, 5, 17, 10, 0, 0, TimeSpan.Zero);

    private static Message<EventRecord> Message(EventRecord record)
    {
        var attributes = MessageAttributes.CreateBuilder()
            .Set(MessageAttributeKeys.ReceivedAt, s_received)
            .Set(MessageAttributeKeys.Subject, "access.raw")
            .Set(MessageAttributeKeys.StreamSequence, 7UL)
            .Build();
        return new Message<EventRecord>(record, Key: "k1", Attributes: attributes);
    }

    [Test]
    public void From_NoColumns_UsesDefaultSchemaWithRawPayload()
    {
        var mapper = ColumnMapper.From(new ParquetDestinationOptions { Type = "parquet", Path = "x" });

        var row = mapper.Map(Message(new EventRecord("raw line"u8.ToArray()).Set("f", 1L)));

        Assert.That(mapper.Columns.Select(c => (c.Name, c.Type)), Is.EqualTo(new[]
        {
            ("received_at", ColumnType.Timestamp), ("subject", ColumnType.String), ("sequence", ColumnType.Long), ("key", ColumnType.String), ("payload", ColumnType.Binary),
        }));
        Assert.That(row[0], Is.EqualTo(s_received));
        Assert.That(row[1], Is.EqualTo("access.raw"));
        Assert.That(row[2], Is.EqualTo(7L));
        Assert.That(row[3], Is.EqualTo("k1"));
        Assert.That(row[4], Is.EqualTo(Encoding.UTF8.GetBytes("raw line")));
        Assert.That(mapper.UnmappedFields, Is.EqualTo(1), "no extra column: the field is counted");
    }

    [Test]
    public void Map_CoercesExactValuesAndCollectsExtraFields()
    {
        var mapper = new ColumnMapper(
        [
            new("status", ColumnType.Long, "status", false),
            new("code", ColumnType.Int, "code", true),
            new("ratio", ColumnType.Double, "ratio", true),
            new("ok", ColumnType.Bool, "ok", true),
            new("ts", ColumnType.Timestamp, "when", true),
            new("ts_text", ColumnType.String, "ts2", true),
            new("payload", ColumnType.String, "$raw", true),
        ], extraColumn: "_extra");
        var record = new EventRecord("line"u8.ToArray())
            .Set("status", "200").Set("code", 3.0).Set("ratio", 1L).Set("ok", "true")
            .Set("when", "2026-05-17T12:00:00+02:00").Set("ts2", new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
            .Set("agent", "curl").Set("n", 5L);

        var row = mapper.Map(Message(record));

        Assert.That(row[0], Is.EqualTo(200L));
        Assert.That(row[1], Is.EqualTo(3));
        Assert.That(row[2], Is.EqualTo(1.0));
        Assert.That(row[3], Is.EqualTo(true));
        Assert.That(row[4], Is.EqualTo(new DateTimeOffset(2026, 5, 17, 10, 0, 0, TimeSpan.Zero)));
        Assert.That(row[5], Is.EqualTo("2026-01-01T00:00:00.0000000+00:00"));
        Assert.That(row[6], Is.EqualTo("line"));
        Assert.That(row[7], Is.EqualTo("{\"agent\":\"curl\",\"n\":5}"));
        Assert.That(mapper.UnmappedFields, Is.Zero);
    }

    [Test]
    public void Map_EventsWithFieldsInChangingOrder_EachValueLandsInItsColumn()
    {
        // Columns look first where they found their field last time; a different order or a missing field must not
        // pick up a neighbour's value.
        var mapper = new ColumnMapper([new ColumnSpec("a", ColumnType.Long, "a", true), new ColumnSpec("b", ColumnType.String, "b", true)]);

        var rows = new[]
        {
            mapper.Map(Message(new EventRecord().Set("a", 1L).Set("b", "x"))),
            mapper.Map(Message(new EventRecord().Set("b", "y").Set("a", 2L))),
            mapper.Map(Message(new EventRecord().Set("c", 0L).Set("b", "z"))),
            mapper.Map(Message(new EventRecord().Set("a", 4L).Set("b", "w"))),
        };

        Assert.That(rows.Select(r => (r[0], r[1])), Is.EqualTo(new (object?, object?)[] { (1L, "x"), (2L, "y"), (null, "z"), (4L, "w") }));
        Assert.That(mapper.UnmappedFields, Is.EqualTo(1), "field c of the third event is counted once");
    }

    [Test]
    public async Task Map_ParsedEventsSharingAShape_UnmappedCountedPerEventAndChangedRecordsRecounted()
    {
        // Parsed events of one shape share their names: the count is taken once per shape, but it must stay right for
        // every event, for a record whose names changed after parsing, and for the next shape.
        var counting = new ColumnMapper([new ColumnSpec("a", ColumnType.Long, "a", true)]);
        var extra = new ColumnMapper([new ColumnSpec("a", ColumnType.Long, "a", true)], extraColumn: "_extra");
        var parse = Kawa.Dataflow.Cli.Handlers.ParseHandler.Json();
        async Task<EventRecord> Parse(string json) => (await parse.HandleAsync(new Message<EventRecord>(new EventRecord(Encoding.UTF8.GetBytes(json)))))[0].Value;

        for (var i = 0; i < 3; i++)
        {
            var record = await Parse("{\"a\":1,\"b\":2,\"c\":3}");
            counting.Map(Message(record));
            Assert.That(extra.Map(Message(record))[1], Is.EqualTo("{\"b\":2,\"c\":3}"));
        }

        var renamed = await Parse("{\"a\":1,\"b\":2,\"c\":3}");
        renamed.Rename("b", "a2");
        renamed.Remove("c");
        counting.Map(Message(renamed));
        var allMapped = await Parse("{\"a\":1}");
        counting.Map(Message(allMapped));
        Assert.That(extra.Map(Message(allMapped))[1], Is.Null);
        counting.Map(Message(await Parse("{\"a\":1,\"b\":2,\"c\":3}")));

        Assert.That(counting.UnmappedFields, Is.EqualTo((3 * 2) + 1 + 0 + 2));
    }

    [Test]
    public void Map_NullInNonNullableColumn_ThrowsNamingColumn()
    {
        var mapper = new ColumnMapper([new("ts", ColumnType.Timestamp, "ts", false)]);

        var ex = Assert.Throws<RowMappingException>(() => mapper.Map(Message(new EventRecord())));

        Assert.That(ex!.Column, Is.EqualTo("ts"));
        Assert.That(ex.Message, Is.EqualTo("column 'ts': is not nullable, but field 'ts' is missing or null"));
    }

    [TestCase("long", "abc", "column 'c': cannot convert string 'abc' from 'f' to long")]
    [TestCase("long", 2.5, "column 'c': cannot convert double '2.5' from 'f' to long")]
    [TestCase("int", 3_000_000_000L, "column 'c': 3000000000 does not fit a 32-bit int")]
    [TestCase("timestamp", "yesterday", "column 'c': cannot convert string 'yesterday' from 'f' to timestamp")]
    public void Map_ValueThatDoesNotConvert_Throws(string type, object value, string message)
    {
        var mapper = new ColumnMapper([new("c", ColumnMapper.ParseType(type), "f", true)]);
        var record = value switch
        {
            string s => new EventRecord().Set("f", s),
            double d => new EventRecord().Set("f", d),
            long l => new EventRecord().Set("f", l),
            _ => throw new ArgumentException("test value", nameof(value)),
        };

        var ex = Assert.Throws<RowMappingException>(() => mapper.Map(Message(record)));

        Assert.That(ex!.Message, Is.EqualTo(message));
    }
}

public class DeadLetterRecordsTests
{
    [Test]
    public void ToMessage_ParseFailure_KeepsRawAttributesAndAddsFailureFields()
    {
        var attributes = MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.StreamSequence, 9UL).Build();
        var original = new Message<EventRecord>(new EventRecord("not json"u8.ToArray()).Set("seen", 1L), "k", "t", attributes);
        var failedAt = new DateTimeOffset(2026, 5, 17, 12, 0, 0, TimeSpan.FromHours(2));
        var deadLetter = new DeadLetter<EventRecord>(original, "handler:parse-0", "EventParseException", "json: invalid JSON", 1, failedAt);

        var message = DeadLetterRecords.ToMessage(deadLetter);

        Assert.That(message.Value.Raw.ToArray(), Is.EqualTo("not json"u8.ToArray()));
        Assert.That(message.Key, Is.EqualTo("k"));
        Assert.That(message.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence), Is.EqualTo(9UL));
        Assert.That(message.Value.Names, Is.EqualTo(new[]
        {
            DeadLetterRecords.Stage, DeadLetterRecords.ErrorType, DeadLetterRecords.Reason, DeadLetterRecords.Attempts, DeadLetterRecords.FailedAt, "seen",
        }));
        Assert.That(message.Value[DeadLetterRecords.FailedAt].AsTimestamp(), Is.EqualTo(failedAt));
        Assert.That(message.Value[DeadLetterRecords.FailedAt].AsTimestamp().Offset, Is.EqualTo(TimeSpan.Zero));
    }

    [Test]
    public void From_DeadLetterParquetWithoutColumns_MapsFailureColumnsAndPayload()
    {
        var mapper = ColumnMapper.From(new ParquetDestinationOptions { Type = "parquet", Path = "dl" }, deadLetter: true);
        var original = new Message<EventRecord>(new EventRecord("bad"u8.ToArray()));
        var message = DeadLetterRecords.ToMessage(new DeadLetter<EventRecord>(original, "handler:p", "E", "why", 3, DateTimeOffset.UnixEpoch));

        var row = mapper.Map(message);

        var byName = mapper.Columns.Select((c, i) => (c.Name, Value: row[i])).ToDictionary(x => x.Name, x => x.Value);
        Assert.That(byName["stage"], Is.EqualTo("handler:p"));
        Assert.That(byName["reason"], Is.EqualTo("why"));
        Assert.That(byName["attempts"], Is.EqualTo(3L));
        Assert.That(byName["failed_at"], Is.EqualTo(DateTimeOffset.UnixEpoch));
        Assert.That(byName["payload"], Is.EqualTo("bad"u8.ToArray()));
    }
}
