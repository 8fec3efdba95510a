using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Auth;

/// <summary><see cref="NatsConnectionOptions.Creds"/>: a .creds file's contents given inline.</summary>
[NonParallelizable]
public class NatsInlineCredsTests
{
    [Test]
    public async Task Connect_InlineCreds_AuthenticatesInOperatorMode()
    {
        await using var op = await OperatorModeServer.StartAsync();

        await using var connection = await NatsTestHelpers.ConnectAsync(op.Server, o => o.Creds = op.Creds);
        await using var subscription = await connection.SubscribeAsync("inline.x");
        await connection.PublishAsync("inline.x", "creds"u8.ToArray());
        var msg = await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);

        Assert.That(msg.Data, Is.EqualTo("creds"u8.ToArray()));
    }

    [Test]
    public void Validate_InlineCredsWithoutSeedOrWithAFile_ReportsBothWithoutTheSecret()
    {
        const string jwtOnly = "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiSECRET\n------END NATS USER JWT------\n";
        var options = new NatsConnectionOptions { Creds = jwtOnly, CredsFile = "/dev/null" };

        var errors = options.Validate();

        Assert.Multiple(() =>
        {
            Assert.That(errors, Has.Some.EqualTo("Creds/CredsFile: give one, not both."));
            Assert.That(errors, Has.Some.StartsWith("Creds: The creds file holds 1 decorated block(s)"));
            Assert.That(string.Join(" ", errors) + options, Does.Not.Contain("SECRET"));
            Assert.That(options.ToString(), Does.Contain("creds-file"));
        });
    }

    [Test]
    public void ToString_InlineCreds_IsMasked()
    {
        var options = new NatsConnectionOptions { Creds = "-----BEGIN NATS USER JWT-----\nJWT-SECRET\n------END NATS USER JWT------\n-----BEGIN USER NKEY SEED-----\nSUSECRET\n------END USER NKEY SEED------\n" };

        Assert.That(options.ToString(), Does.Contain("creds ***").And.Not.Contain("SECRET"));
        Assert.That(options.Validate(), Is.Empty);
    }
}
