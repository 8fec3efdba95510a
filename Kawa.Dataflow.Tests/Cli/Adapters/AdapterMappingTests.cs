using System.Text;
using System.Text.Json;
using Kawa.Dataflow.Cli;
using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Mapping;
using Kawa.Dataflow.Parquet.Schema;

namespace Kawa.Dataflow.Tests.Cli.Adapters;

public class AdapterMappingTests
{
    [Test]
    public void From_AuthAndTls_MapsEverySettingOntoTheAdapterOptions()
    {
        var options = new Kawa.Dataflow.Cli.Configuration.NatsJetStreamSourceOptions
        {
            Type = "nats-jetstream",
            Servers = ["nats://a:4222", "nats://b:4222"],
            Auth = new NatsAuthOptions { User = "u", Password = "p", Token = "t", Nkey = "SUABC", CredsFile = "/x.creds" },
            Tls = new Kawa.Dataflow.Cli.Configuration.NatsTlsOptions { Ca = "/ca.pem", Cert = "/c.pem", Key = "/k.pem" },
        };

        var result = NatsConnectionMapping.From(options, "kawa-test");

        Assert.Multiple(() =>
        {
            Assert.That(result.Servers, Is.EqualTo(new[] { "nats://a:4222", "nats://b:4222" }));
            Assert.That(result.Name, Is.EqualTo("kawa-test"));
            Assert.That((result.User, result.Password, result.Token, result.NKeySeed, result.CredsFile), Is.EqualTo(("u", "p", "t", "SUABC", "/x.creds")));
            Assert.That((result.Tls.CaFile, result.Tls.CertFile, result.Tls.KeyFile, result.Tls.Required), Is.EqualTo(("/ca.pem", "/c.pem", "/k.pem", true)));
        });
    }

    [Test]
    public void From_InlineCreds_PassesTheContentsToTheConnection()
    {
        const string creds = "-----BEGIN NATS USER JWT-----\njwt\n------END NATS USER JWT------\n-----BEGIN USER NKEY SEED-----\nSUSEED\n------END USER NKEY SEED------\n";
        var options = new Kawa.Dataflow.Cli.Configuration.NatsJetStreamSourceOptions { Type = "nats-jetstream", Auth = new NatsAuthOptions { Creds = creds } };

        var result = NatsConnectionMapping.From(options, "kawa");

        Assert.That((result.Creds, result.CredsFile), Is.EqualTo((creds, (string?)null)));
    }

    [Test]
    public void Payload_RecordWithFields_IsTheFieldsAsJson()
    {
        var record = new EventRecord(Encoding.UTF8.GetBytes("raw line")).Set("status", 503L).Set("path", "/api");

        var json = JsonDocument.Parse(AdapterComponents.Payload(record)).RootElement;

        Assert.That((json.GetProperty("status").GetInt64(), json.GetProperty("path").GetString()), Is.EqualTo((503L, "/api")));
    }

    [Test]
    public void Payload_RecordWithoutFields_IsTheRawPayloadUnchanged()
    {
        var raw = Encoding.UTF8.GetBytes("not parsed");

        Assert.That(AdapterComponents.Payload(new EventRecord(raw)).ToArray(), Is.EqualTo(raw));
    }

    [Test]
    public void SchemaOf_ConfiguredColumns_MapsTypesNullabilityAndTheExtraColumn()
    {
        var mapper = new ColumnMapper(
            [new ColumnSpec("ts", ColumnType.Timestamp, "ts", Nullable: false), new ColumnSpec("status", ColumnType.Long, "status", Nullable: true), new ColumnSpec("ok", ColumnType.Bool, "ok", Nullable: true)],
            extraColumn: "_extra");

        var schema = ParquetEventDestination.SchemaOf(mapper);

        Assert.That(
            schema.Fields.Select(f => (f.Name, f.ValueType, f.IsNullable)),
            Is.EqualTo(new[] { ("ts", ParquetValueType.Timestamp, false), ("status", ParquetValueType.Int64, true), ("ok", ParquetValueType.Boolean, true), ("_extra", ParquetValueType.String, true) }));
    }

    [Test]
    public void SubjectOf_FieldsAndMessageProperties_AreRendered()
    {
        var attributes = MessageAttributes.CreateBuilder(1).Set(MessageAttributeKeys.Subject, "access.raw").Build();
        var message = new Message<EventRecord>(new EventRecord().Set("status", 503L), Key: "k1", Attributes: attributes);

        var subject = AdapterComponents.SubjectOf(Kawa.Dataflow.Cli.Templates.FieldTemplate.Parse("alerts.{status}.{$subject}.{$key}.{missing}"))(message);

        Assert.That(subject, Is.EqualTo("alerts.503.access.raw.k1.__null__"));
    }

    [TestCase("dt={ts:yyyy-MM-dd}/hour={ts:HH}", "dt={ts:yyyy-MM-dd}/hour={ts:HH}")]
    [TestCase("dt={$receivedAt:yyyy-MM-dd}/type={type}", "dt={field:$receivedAt:yyyy-MM-dd}/type={field:type}")]
    [TestCase("s={$subject}/k={$key}/x={ status }/t={ts}", "s={subject}/k={key}/x={field:status}/t={field:ts}")]
    public void ToLakeTemplate_DaemonPlaceholders_BecomeLakeTokens(string daemon, string lake)
        => Assert.That(ParquetEventDestination.ToLakeTemplate(daemon), Is.EqualTo(lake));

    [Test]
    public void PartitionOf_PropertyAndFieldPlaceholders_RenderFromTheMessageInUtc()
    {
        // 23:30 at -02:00 is 01:30 UTC the next day: the partition follows UTC.
        var received = new DateTimeOffset(2026, 5, 17, 23, 30, 0, TimeSpan.FromHours(-2));
        var attributes = MessageAttributes.CreateBuilder(2)
            .Set(MessageAttributeKeys.ReceivedAt, received)
            .Set(MessageAttributeKeys.Subject, "orders.new")
            .Build();
        var message = new Message<EventRecord>(new EventRecord().Set("status", 503L), Attributes: attributes);

        var partition = ParquetEventDestination.PartitionOf("dt={$receivedAt:yyyy-MM-dd}/status={status}/s={$subject}/r={region}", TimeProvider.System);

        Assert.That(partition.Evaluate(message), Is.EqualTo("dt=2026-05-18/status=503/s=orders.new/r=__HIVE_DEFAULT_PARTITION__"));
    }
}
