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
}
