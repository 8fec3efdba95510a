using System.Text;
using Kawa.Dataflow.Cli.Configuration;
using Microsoft.Extensions.Configuration;

namespace Kawa.Dataflow.Tests.Cli.Configuration;

public class SecretsTests
{
    [TestCase("nats://alice:pw@host:4222", "nats://alice:***@host:4222")]
    [TestCase("nats://tokenonly@host:4222/x", "nats://***@host:4222/x")]
    [TestCase("nats://host:4222", "nats://host:4222")]
    [TestCase("not a url", "not a url")]
    [TestCase("https://k:s@h/p?q=a@b", "https://k:***@h/p?q=a@b")]
    public void MaskUrl_UserInfo_IsMasked(string input, string expected)
    {
        Assert.That(Secrets.MaskUrl(input), Is.EqualTo(expected));
    }

    [TestCase("pipeline:source:auth:password", true)]
    [TestCase("pipeline.destination.s3.SECRETKEY", true)]
    [TestCase("token", true)]
    [TestCase("pipeline:source:auth:credsFile", false)]
    [TestCase("pipeline:source:tls:key", false)]
    public void IsSecretKey_ByLastSegment(string key, bool secret)
    {
        Assert.That(Secrets.IsSecretKey(key), Is.EqualTo(secret));
    }

    [Test]
    public void ToMaskedJson_EffectiveConfig_MasksSecretsKeepsShape()
    {
        var json = """
            { "pipeline": { "name": "x", "source": { "servers": [ "nats://u:pw-SECRET@h:4222" ],
              "auth": { "user": "u", "password": "pw-SECRET", "creds": { "nested": "creds-SECRET" } } } } }
            """;
        var configuration = new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();

        var printed = ConfigPrinter.ToMaskedJson(configuration);

        Assert.That(printed, Does.Not.Contain("SECRET"));
        Assert.That(printed, Does.Contain("\"password\": \"***\"").And.Contain("\"creds\": \"***\"").And.Contain("\"user\": \"u\""));
        Assert.That(printed, Does.Contain("\"nats://u:***@h:4222\""));
    }

    [Test]
    public void Closest_Typos_AreSuggestedButShortOrFarInputsAreNot()
    {
        Assert.That(Suggest.Closest("paralelism", ["parallelism", "capacity"]), Is.EqualTo("parallelism"));
        Assert.That(Suggest.Closest("PARTITIONBY", ["partitionBy"]), Is.EqualTo("partitionBy"));
        Assert.That(Suggest.Closest("rollaeg", ["rollAge", "rollRows"]), Is.EqualTo("rollAge"));
        Assert.That(Suggest.Closest("zzzzzz", ["parallelism"]), Is.Null);
        Assert.That(Suggest.Closest("=~", ["=="]), Is.Null);
    }
}
