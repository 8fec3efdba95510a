using System.Text;
using Kawa.Dataflow.Nats.Auth;

namespace Kawa.Dataflow.Tests.Nats.Auth;

public class NKeysTests
{
    [Test]
    public void CreateUser_EncodesSeedAndPublicKeyWithPrefixes_RoundTrips()
    {
        var pair = NKeyPair.Create(NKeyType.User);

        var seed = pair.EncodeSeed();
        var decoded = NKeyPair.FromSeed(seed);

        Assert.That(seed, Does.StartWith("SU"));
        Assert.That(seed, Has.Length.EqualTo(58));
        Assert.That(pair.PublicKey, Does.StartWith("U"));
        Assert.That(pair.PublicKey, Has.Length.EqualTo(56));
        Assert.That(decoded.PublicKey, Is.EqualTo(pair.PublicKey));
        Assert.That(decoded.Type, Is.EqualTo(NKeyType.User));
    }

    [TestCase((byte)0, "SA", "A")]
    [TestCase((byte)(14 << 3), "SO", "O")]
    [TestCase((byte)(13 << 3), "SN", "N")]
    public void Create_OtherTypes_PrefixLetters(byte type, string seedPrefix, string keyPrefix)
    {
        var pair = NKeyPair.Create((NKeyType)type);

        Assert.That(pair.EncodeSeed(), Does.StartWith(seedPrefix));
        Assert.That(pair.PublicKey, Does.StartWith(keyPrefix));
    }

    [Test]
    public void Sign_VerifiesWithPublicKeyOnly()
    {
        var pair = NKeyPair.Create(NKeyType.User);
        var nonce = Encoding.ASCII.GetBytes("server-nonce-123");

        var signature = pair.Sign(nonce);

        Assert.That(signature, Has.Length.EqualTo(64));
        Assert.That(NKeyPair.Verify(pair.PublicKey, nonce, signature), Is.True);
        Assert.That(NKeyPair.Verify(pair.PublicKey, "other"u8, signature), Is.False);
    }

    [Test]
    public void FromSeed_OneCharacterChanged_FailsCrcWithoutEchoingTheSeed()
    {
        var seed = NKeyPair.Create(NKeyType.User).EncodeSeed();
        var chars = seed.ToCharArray();
        chars[20] = chars[20] == 'A' ? 'B' : 'A';
        var broken = new string(chars);

        var ex = Assert.Throws<FormatException>(() => NKeyPair.FromSeed(broken));

        Assert.That(ex!.Message, Does.Contain("CRC16"));
        Assert.That(ex.Message, Does.Not.Contain(broken));
    }

    [Test]
    public void FromSeed_NotBase32_ClearError()
    {
        var ex = Assert.Throws<FormatException>(() => NKeyPair.FromSeed("SU!!notbase32"));

        Assert.That(ex!.Message, Does.Contain("not base32"));
    }

    [Test]
    public void Crc16_KnownXmodemVector() => Assert.That(Crc16.Compute("123456789"u8), Is.EqualTo(0x31C3));

    [Test]
    public void PairToString_ShowsOnlyPublicKey()
    {
        var pair = NKeyPair.Create(NKeyType.User);

        Assert.That(pair.ToString(), Does.Contain(pair.PublicKey).And.Not.Contain(pair.EncodeSeed()));
    }

    [Test]
    public void CredsFile_ParsesJwtAndSeedBlocks()
    {
        const string creds = """
            -----BEGIN NATS USER JWT-----
            eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.payload.sig
            ------END NATS USER JWT------

            ************************* IMPORTANT *************************
            NKEY Seed printed below can be used to sign and prove identity.

            -----BEGIN USER NKEY SEED-----
            SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4
            ------END USER NKEY SEED------
            """;

        var (jwt, seed) = CredsFile.Parse(creds);

        Assert.That(jwt, Is.EqualTo("eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.payload.sig"));
        Assert.That(seed, Is.EqualTo("SUAIBDPBAUTWCWBKIO6XHQNINK5FWJW4OHLXC3HQ2KFE4PEJUA44CNHTC4"));
    }

    [Test]
    public void CredsFile_MissingSeed_ClearErrorWithoutContent()
    {
        var ex = Assert.Throws<FormatException>(() => CredsFile.Parse("-----BEGIN NATS USER JWT-----\nsecretjwt\n------END NATS USER JWT------\n"));

        Assert.That(ex!.Message, Does.Contain("expected a user JWT block and an NKey seed block").And.Not.Contain("secretjwt"));
    }
}
