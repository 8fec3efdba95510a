using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Kawa.Dataflow.Nats.Auth;

/// <summary>NKey types, as their prefix byte (a base32 letter after encoding: U user, A account, O operator, N server).</summary>
internal enum NKeyType : byte
{
    Account = 0,           // 'A'
    Cluster = 2 << 3,      // 'C'
    Operator = 14 << 3,    // 'O'
    Server = 13 << 3,      // 'N'
    User = 20 << 3,        // 'U'
}

/// <summary>
/// An Ed25519 NKey pair: seeds are <c>base32(prefix(seed,type) ‖ 32-byte seed ‖ crc16)</c> and public keys
/// <c>base32(type ‖ 32-byte key ‖ crc16)</c>, CRC-16/XMODEM little endian, base32 without padding.
/// </summary>
/// <remarks>The seed is secret: <see cref="ToString"/> shows only the public key.</remarks>
internal sealed class NKeyPair
{
    private const byte SeedPrefix = 18 << 3; // 'S'

    private readonly byte[] _seed;

    private NKeyPair(NKeyType type, byte[] seed)
    {
        Type = type;
        _seed = seed;
        var privateKey = new Ed25519PrivateKeyParameters(seed, 0);
        PublicKey = EncodePublicKey(type, privateKey.GeneratePublicKey().GetEncoded());
    }

    public NKeyType Type { get; }

    /// <summary>The encoded public key, e.g. <c>U...</c>.</summary>
    public string PublicKey { get; }

    /// <summary>Decodes an encoded seed (<c>SU...</c>).</summary>
    /// <exception cref="FormatException">Not a valid seed; the message never contains the seed.</exception>
    public static NKeyPair FromSeed(string encodedSeed)
    {
        ArgumentNullException.ThrowIfNull(encodedSeed);
        var raw = Base32.Decode(encodedSeed.Trim(), "NKey seed");
        if (raw.Length != 2 + 32 + 2)
        {
            throw new FormatException($"NKey seed has {raw.Length} bytes after base32 decoding; expected 36.");
        }

        CheckCrc(raw, "NKey seed");
        var b1 = (byte)(raw[0] & 0xF8);
        var b2 = (byte)(((raw[0] & 0x07) << 5) | ((raw[1] & 0xF8) >> 3));
        if (b1 != SeedPrefix)
        {
            throw new FormatException("NKey seed does not start with the seed prefix 'S'.");
        }

        if (!Enum.IsDefined((NKeyType)b2))
        {
            throw new FormatException("NKey seed has an unknown key type.");
        }

        return new NKeyPair((NKeyType)b2, raw.AsSpan(2, 32).ToArray());
    }

    /// <summary>Creates a fresh random pair of <paramref name="type"/>.</summary>
    public static NKeyPair Create(NKeyType type)
    {
        var seed = RandomNumberGenerator.GetBytes(32);
        return new NKeyPair(type, seed);
    }

    /// <summary>The encoded seed (secret).</summary>
    public string EncodeSeed()
    {
        var raw = new byte[36];
        var t = (byte)Type;
        raw[0] = (byte)(SeedPrefix | (t >> 5));
        raw[1] = (byte)((t & 31) << 3);
        _seed.CopyTo(raw, 2);
        var crc = Crc16.Compute(raw.AsSpan(0, 34));
        raw[34] = (byte)crc;
        raw[35] = (byte)(crc >> 8);
        return Base32.Encode(raw);
    }

    /// <summary>Ed25519 signature of <paramref name="data"/>.</summary>
    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        var signer = new Ed25519Signer();
        signer.Init(true, new Ed25519PrivateKeyParameters(_seed, 0));
        var bytes = data.ToArray();
        signer.BlockUpdate(bytes, 0, bytes.Length);
        return signer.GenerateSignature();
    }

    /// <summary>Checks <paramref name="signature"/> of <paramref name="data"/> against an encoded public key.</summary>
    public static bool Verify(string publicKey, ReadOnlySpan<byte> data, byte[] signature)
    {
        var raw = DecodePublicKey(publicKey, out _);
        var verifier = new Ed25519Signer();
        verifier.Init(false, new Ed25519PublicKeyParameters(raw, 0));
        var bytes = data.ToArray();
        verifier.BlockUpdate(bytes, 0, bytes.Length);
        return verifier.VerifySignature(signature);
    }

    public static string EncodePublicKey(NKeyType type, ReadOnlySpan<byte> key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException("An Ed25519 public key has 32 bytes.", nameof(key));
        }

        var raw = new byte[35];
        raw[0] = (byte)type;
        key.CopyTo(raw.AsSpan(1));
        var crc = Crc16.Compute(raw.AsSpan(0, 33));
        raw[33] = (byte)crc;
        raw[34] = (byte)(crc >> 8);
        return Base32.Encode(raw);
    }

    public static byte[] DecodePublicKey(string publicKey, out NKeyType type)
    {
        var raw = Base32.Decode(publicKey, "NKey public key");
        if (raw.Length != 35)
        {
            throw new FormatException($"NKey public key has {raw.Length} bytes after base32 decoding; expected 35.");
        }

        CheckCrc(raw, "NKey public key");
        type = (NKeyType)raw[0];
        if (!Enum.IsDefined(type))
        {
            throw new FormatException("NKey public key has an unknown key type.");
        }

        return raw.AsSpan(1, 32).ToArray();
    }

    public override string ToString() => $"NKeyPair {{ {Type}, {PublicKey} }}";

    private static void CheckCrc(byte[] raw, string what)
    {
        var expected = (ushort)(raw[^2] | (raw[^1] << 8));
        if (Crc16.Compute(raw.AsSpan(0, raw.Length - 2)) != expected)
        {
            throw new FormatException($"{what} fails its CRC16 check (mistyped or truncated).");
        }
    }
}

/// <summary>CRC-16/XMODEM (polynomial 0x1021, initial 0), as NKeys use.</summary>
internal static class Crc16
{
    public static ushort Compute(ReadOnlySpan<byte> data)
    {
        ushort crc = 0;
        foreach (var b in data)
        {
            crc ^= (ushort)(b << 8);
            for (var i = 0; i < 8; i++)
            {
                crc = (crc & 0x8000) != 0 ? (ushort)((crc << 1) ^ 0x1021) : (ushort)(crc << 1);
            }
        }

        return crc;
    }
}

/// <summary>RFC 4648 base32 (A-Z2-7) without padding.</summary>
internal static class Base32
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    public static string Encode(ReadOnlySpan<byte> data)
    {
        var chars = new char[((data.Length * 8) + 4) / 5];
        int buffer = 0, bits = 0, pos = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                chars[pos++] = Alphabet[(buffer >> (bits - 5)) & 31];
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            chars[pos++] = Alphabet[(buffer << (5 - bits)) & 31];
        }

        return new string(chars, 0, pos);
    }

    /// <exception cref="FormatException">A character outside the alphabet; the message names only <paramref name="what"/>.</exception>
    public static byte[] Decode(string text, string what)
    {
        var trimmed = text.TrimEnd('=');
        var bytes = new byte[trimmed.Length * 5 / 8];
        int buffer = 0, bits = 0, pos = 0;
        for (var i = 0; i < trimmed.Length; i++)
        {
            var c = trimmed[i];
            var value = c is >= 'A' and <= 'Z' ? c - 'A' : c is >= '2' and <= '7' ? c - '2' + 26 : c is >= 'a' and <= 'z' ? c - 'a' : -1;
            if (value < 0)
            {
                throw new FormatException($"{what} holds a character that is not base32 at position {i}.");
            }

            buffer = (buffer << 5) | value;
            bits += 5;
            if (bits >= 8)
            {
                if (pos < bytes.Length)
                {
                    bytes[pos++] = (byte)(buffer >> (bits - 8));
                }

                bits -= 8;
            }
        }

        return bytes;
    }
}
