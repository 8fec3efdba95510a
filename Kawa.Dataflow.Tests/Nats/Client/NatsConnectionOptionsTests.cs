using Kawa.Dataflow.Nats;

namespace Kawa.Dataflow.Tests.Nats.Client;

public class NatsConnectionOptionsTests
{
    [Test]
    public void Validate_Defaults_NoProblems() => Assert.That(new NatsConnectionOptions().Validate(), Is.Empty);

    [Test]
    public void Validate_ManyProblems_ReportsEveryOneWithItsProperty()
    {
        var options = new NatsConnectionOptions
        {
            Servers = ["http://x:1", "nats://"],
            Token = "t",
            User = "u",
            PingInterval = TimeSpan.Zero,
            MaxPingsOut = 0,
            InboxPrefix = "bad prefix",
        };
        options.Tls.CertFile = "/nope.pem";

        var errors = options.Validate();

        Assert.That(errors, Has.Some.StartsWith("Servers[0]"));
        Assert.That(errors, Has.Some.StartsWith("Servers[1]"));
        Assert.That(errors, Has.Some.StartsWith("Auth:"));
        Assert.That(errors, Has.Some.StartsWith("User/Password"));
        Assert.That(errors, Has.Some.StartsWith("PingInterval"));
        Assert.That(errors, Has.Some.StartsWith("MaxPingsOut"));
        Assert.That(errors, Has.Some.StartsWith("InboxPrefix"));
        Assert.That(errors, Has.Some.StartsWith("Tls.CertFile/Tls.KeyFile"));
    }

    [Test]
    public void ToStringAndErrors_NeverShowSecrets()
    {
        const string secret = "s3cr3t-VALUE";
        var withPassword = new NatsConnectionOptions { User = "alice", Password = secret, Servers = [$"nats://alice:{secret}@host:4222"] };
        var withToken = new NatsConnectionOptions { Token = secret };
        var withSeed = new NatsConnectionOptions { NKeySeed = secret, Jwt = secret };

        var texts = new[] { withPassword.ToString(), withToken.ToString(), withSeed.ToString() }
            .Concat(withPassword.Validate());

        Assert.That(texts, Has.None.Contains(secret));
        Assert.That(withPassword.Validate(), Has.Some.Contains("carries credentials"));
    }
}
