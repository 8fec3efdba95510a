using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Auth;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Auth;

[NonParallelizable]
public class NatsOperatorModeTests
{
    [Test]
    public async Task CredsFile_UserJwtSignedByAccount_AcceptedAndForeignUserRejected()
    {
        var op = NKeyPair.Create(NKeyType.Operator);
        var account = NKeyPair.Create(NKeyType.Account);
        var user = NKeyPair.Create(NKeyType.User);
        var directory = Path.Combine(Path.GetTempPath(), "kawa-op-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var operatorJwt = Path.Combine(directory, "operator.jwt");
        await File.WriteAllTextAsync(operatorJwt, TestJwt.Operator(op));
        var system = NKeyPair.Create(NKeyType.Account); // JetStream needs a system account in operator mode
        var config = $"operator: \"{operatorJwt}\"\nsystem_account: {system.PublicKey}\nresolver: MEMORY\nresolver_preload: {{\n" +
            $"  {account.PublicKey}: \"{TestJwt.Account(op, account)}\"\n  {system.PublicKey}: \"{TestJwt.Account(op, system)}\"\n}}\n";
        var server = await NatsServerProcess.StartAsync(config, directory: directory);
        try
        {
            var creds = Path.Combine(directory, "user.creds");
            await File.WriteAllTextAsync(creds, TestJwt.Creds(TestJwt.User(account, user), user));

            await using (var connection = await NatsTestHelpers.ConnectAsync(server, o => o.CredsFile = creds))
            {
                await using var subscription = await connection.SubscribeAsync("op.x");
                await connection.PublishAsync("op.x", "jwt"u8.ToArray());
                var msg = await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);
                Assert.That(msg.Data, Is.EqualTo("jwt"u8.ToArray()));
            }

            // A user signed by an account the operator never issued.
            var rogueAccount = NKeyPair.Create(NKeyType.Account);
            var rogueUser = NKeyPair.Create(NKeyType.User);
            await using var rogue = new NatsConnection(NatsTestHelpers.Options(server, o =>
            {
                o.Jwt = TestJwt.User(rogueAccount, rogueUser);
                o.NKeySeed = rogueUser.EncodeSeed();
            }));
            var ex = await Assert.ThrowsAsync<NatsAuthenticationException>(() => rogue.ConnectAsync());
            Assert.That(ex!.ToString(), Does.Not.Contain(rogueUser.EncodeSeed()));
        }
        finally
        {
            await server.DisposeAsync();
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public async Task JwtAndSeedGivenDirectly_UserOfTheAccount_AcceptedAndJetStreamUsable()
    {
        await using var op = await OperatorModeServer.StartAsync();

        await using var connection = await NatsTestHelpers.ConnectAsync(op.Server, o =>
        {
            o.Jwt = op.Jwt;
            o.NKeySeed = op.Seed;
        });
        var js = new Kawa.Dataflow.Nats.JetStream.JetStreamContext(connection);
        await js.CreateStreamAsync(new Kawa.Dataflow.Nats.JetStream.StreamConfig { Name = "OPJWT", Subjects = ["opjwt.>"] });
        var ack = await js.PublishAsync("opjwt.a", "signed"u8.ToArray());

        Assert.That(connection.State, Is.EqualTo(NatsConnectionState.Connected));
        Assert.That(ack.Stream, Is.EqualTo("OPJWT"), "the account's JetStream stored it: the server accepted the signed user");
        Assert.That(connection.Options.ToString(), Does.Not.Contain(op.Seed));
    }
}
