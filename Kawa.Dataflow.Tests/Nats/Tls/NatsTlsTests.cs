using Kawa.Dataflow.Nats;
using Kawa.Dataflow.Nats.Client;
using Kawa.Dataflow.Tests.Nats.Infrastructure;

namespace Kawa.Dataflow.Tests.Nats.Tls;

[NonParallelizable]
public class NatsTlsTests
{
    private string _directory = null!;
    private TestCertificates _ca = null!;
    private TestCertificates _foreignCa = null!;
    private (string Cert, string Key) _server;
    private (string Cert, string Key) _foreignServer;
    private (string Cert, string Key) _client;
    private (string Cert, string Key) _foreignClient;

    [OneTimeSetUp]
    public void Certificates()
    {
        _directory = Path.Combine(Path.GetTempPath(), "kawa-tls-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        _ca = TestCertificates.Create(_directory, "trusted");
        _foreignCa = TestCertificates.Create(_directory, "foreign");
        _server = _ca.Issue("server", server: true);
        _foreignServer = _foreignCa.Issue("foreign-server", server: true);
        _client = _ca.Issue("client", server: false);
        _foreignClient = _foreignCa.Issue("foreign-client", server: false);
    }

    [OneTimeTearDown]
    public void Cleanup() => Directory.Delete(_directory, recursive: true);

    private static string TlsConfig((string Cert, string Key) server, string? verifyCa = null)
        => $"tls {{\n  cert_file: \"{server.Cert}\"\n  key_file: \"{server.Key}\"\n" +
           (verifyCa is null ? string.Empty : $"  ca_file: \"{verifyCa}\"\n  verify: true\n") + "  timeout: 5\n}\n";

    private static async Task RoundTripAsync(NatsConnection connection)
    {
        await using var subscription = await connection.SubscribeAsync("tls.x");
        await connection.PublishAsync("tls.x", "secure"u8.ToArray());
        var msg = await subscription.Messages.ReadAsync().AsTask().WaitAsync(NatsTestHelpers.Generous);
        Assert.That(msg.Data, Is.EqualTo("secure"u8.ToArray()));
    }

    [Test]
    public async Task ServerRequiresTls_CustomCa_UpgradesAndWorks()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_server));
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.Tls.CaFile = _ca.CaFile);

        Assert.That(connection.ServerInfo.TlsRequired, Is.True);
        await RoundTripAsync(connection);
    }

    [Test]
    public async Task ServerCertFromForeignCa_Rejected()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_foreignServer));
        await using var connection = new NatsConnection(NatsTestHelpers.Options(server, o => o.Tls.CaFile = _ca.CaFile));

        var ex = await Assert.ThrowsAsync<NatsAuthenticationException>(() => connection.ConnectAsync());

        Assert.That(ex!.Message, Does.Contain("TLS handshake"));
    }

    [Test]
    public async Task ServerCertNotTrustedBySystem_RejectedWithoutCaFile()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_server));
        await using var connection = new NatsConnection(NatsTestHelpers.Options(server));

        await Assert.ThrowsAsync<NatsAuthenticationException>(() => connection.ConnectAsync());
    }

    [Test]
    public async Task HostNameNotInCertificate_Rejected()
    {
        var wrongName = _ca.Issue("wrong-name", server: false); // no SAN for 127.0.0.1
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(wrongName));
        await using var connection = new NatsConnection(NatsTestHelpers.Options(server, o => o.Tls.CaFile = _ca.CaFile));

        await Assert.ThrowsAsync<NatsAuthenticationException>(() => connection.ConnectAsync());
    }

    [Test]
    public async Task InsecureSkipVerify_AcceptsForeignCertificate()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_foreignServer));
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o => o.Tls.InsecureSkipVerify = true);

        await RoundTripAsync(connection);
    }

    [Test]
    public async Task MutualTls_ClientCertFromTrustedCa_Accepted()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_server, verifyCa: _ca.CaFile));
        await using var connection = await NatsTestHelpers.ConnectAsync(server, o =>
        {
            o.Tls.CaFile = _ca.CaFile;
            o.Tls.CertFile = _client.Cert;
            o.Tls.KeyFile = _client.Key;
        });

        await RoundTripAsync(connection);
    }

    [Test]
    public async Task MutualTls_NoClientCert_Rejected()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_server, verifyCa: _ca.CaFile));
        await using var connection = new NatsConnection(NatsTestHelpers.Options(server, o => o.Tls.CaFile = _ca.CaFile));

        await Assert.ThrowsAsync(Is.InstanceOf<NatsException>(), () => connection.ConnectAsync());
    }

    [Test]
    public async Task MutualTls_ClientCertFromForeignCa_Rejected()
    {
        await using var server = await NatsServerProcess.StartAsync(TlsConfig(_server, verifyCa: _ca.CaFile));
        await using var connection = new NatsConnection(NatsTestHelpers.Options(server, o =>
        {
            o.Tls.CaFile = _ca.CaFile;
            o.Tls.CertFile = _foreignClient.Cert;
            o.Tls.KeyFile = _foreignClient.Key;
        }));

        await Assert.ThrowsAsync(Is.InstanceOf<NatsException>(), () => connection.ConnectAsync());
    }
}
