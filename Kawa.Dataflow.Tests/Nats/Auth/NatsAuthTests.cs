using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Auth;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Auth;

[NonParallelizable]
public class NatsAuthTests
{
    private const string Secret = "p4ss-S3CRET-value";

    private static async Task AssertConnectsAndWorksAsync(NatsServerProcess server, Action<NatsConnectionOptions> configure)
    {
        await using var connection = await NatsTestHelpers.ConnectAsync(server, configure);
        await using var subscription = await connection.SubscribeAsync("auth.ok");
        await connection.PublishAsync("auth.ok", "hi"u8.ToArray());
        var msg = await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);
        Assert.That(msg.Data, Is.EqualTo("hi"u8.ToArray()));
    }

    private static async Task<NatsAuthenticationException> AssertRejectedWithoutSecretAsync(NatsServerProcess server, Action<NatsConnectionOptions> configure, params string[] secrets)
    {
        var logs = new CapturingLoggerFactory();
        var options = NatsTestHelpers.Options(server, configure);
        await using var connection = new NatsConnection(options, logs);

        var ex = await Assert.ThrowsAsync<NatsAuthenticationException>(() => connection.ConnectAsync());

        foreach (var secret in secrets)
        {
            Assert.That(ex!.ToString(), Does.Not.Contain(secret));
            Assert.That(logs.Lines, Has.None.Contains(secret));
            Assert.That(options.ToString(), Does.Not.Contain(secret));
        }

        Assert.That(ex!.Message, Does.Contain("Authorization Violation"));
        return ex;
    }

    [Test]
    public async Task Token_RightAccepted_WrongRejectedWithoutLeaking()
    {
        await using var server = await NatsServerProcess.StartAsync($"authorization {{ token: \"{Secret}\" }}\n");

        await AssertConnectsAndWorksAsync(server, o => o.Token = Secret);
        await AssertRejectedWithoutSecretAsync(server, o => o.Token = "wrong-" + Secret, Secret, "wrong-" + Secret);
    }

    [Test]
    public async Task UserPassword_RightAccepted_WrongRejectedWithoutLeaking()
    {
        await using var server = await NatsServerProcess.StartAsync($"authorization {{ user: alice, password: \"{Secret}\" }}\n");

        await AssertConnectsAndWorksAsync(server, o => { o.User = "alice"; o.Password = Secret; });
        await AssertRejectedWithoutSecretAsync(server, o => { o.User = "alice"; o.Password = "nope-" + Secret; }, Secret, "nope-" + Secret);
    }

    [Test]
    public async Task NKey_SeedSignsNonce_Accepted_OtherKeyRejected()
    {
        var user = NKeyPair.Create(NKeyType.User);
        var stranger = NKeyPair.Create(NKeyType.User);
        await using var server = await NatsServerProcess.StartAsync($"authorization {{ users = [ {{ nkey: {user.PublicKey} }} ] }}\n");
        var seedFile = Path.Combine(server.Directory, "user.nk");
        await File.WriteAllTextAsync(seedFile, user.EncodeSeed() + "\n");

        await AssertConnectsAndWorksAsync(server, o => o.NKeySeed = user.EncodeSeed());
        await AssertConnectsAndWorksAsync(server, o => o.NKeySeedFile = seedFile);
        await AssertRejectedWithoutSecretAsync(server, o => o.NKeySeed = stranger.EncodeSeed(), stranger.EncodeSeed());
    }

    [Test]
    public async Task NoCredentials_ServerRequiresAuth_AuthenticationException()
    {
        await using var server = await NatsServerProcess.StartAsync($"authorization {{ token: \"{Secret}\" }}\n");

        await AssertRejectedWithoutSecretAsync(server, _ => { }, Secret);
    }
}
