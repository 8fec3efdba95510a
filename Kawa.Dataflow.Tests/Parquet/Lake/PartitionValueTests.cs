using System.Text;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class PartitionValueTests
{
    [TestCase("2024-05-01", "2024-05-01")]
    [TestCase("../../etc", "%2E.%2F..%2Fetc")]
    [TestCase("..", "%2E%2E")]
    [TestCase(".", "%2E")]
    [TestCase(".hidden", "%2Ehidden")]
    [TestCase("_temporary", "%5Ftemporary")]
    [TestCase("a/b", "a%2Fb")]
    [TestCase("a\\b", "a%5Cb")]
    [TestCase("a\0b", "a%00b")]
    [TestCase("line\nbreak\t", "line%0Abreak%09")]
    [TestCase("k=v", "k%3Dv")]
    [TestCase("50%", "50%25")]
    [TestCase("C:\\x", "C%3A%5Cx")]
    [TestCase("trailing.", "trailing%2E")]
    [TestCase("trailing ", "trailing%20")]
    [TestCase("a~b", "a%7Eb")]
    [TestCase("Zürich 中文 🚀", "Zürich 中文 🚀")]
    public void Escape_KnownValue_IsHiveStyleEncoded(string value, string expected)
    {
        Assert.That(PartitionValue.Escape(value), Is.EqualTo(expected));
        Assert.That(PartitionValue.Unescape(expected), Is.EqualTo(value));
    }

    [TestCase(null)]
    [TestCase("")]
    public void Escape_NullOrEmpty_IsTheHiveDefaultPartition(string? value)
    {
        Assert.That(PartitionValue.Escape(value), Is.EqualTo("__HIVE_DEFAULT_PARTITION__"));
        Assert.That(PartitionValue.Unescape("__HIVE_DEFAULT_PARTITION__"), Is.Null);
    }

    [Test]
    public void Escape_LoneSurrogate_EncodedReversibly()
    {
        var value = "a\uD800b\uDC00";

        var escaped = PartitionValue.Escape(value);

        Assert.That(escaped, Is.EqualTo("a%uD800b%uDC00"));
        Assert.That(PartitionValue.Unescape(escaped), Is.EqualTo(value));
    }

    [Test]
    public void Escape_VeryLongValue_CutWithinTheByteLimitAndStillDistinct()
    {
        var a = new string('x', 10_000) + "a";
        var b = new string('x', 10_000) + "b";
        var emoji = string.Concat(Enumerable.Repeat("🚀/", 200));

        var escapedA = PartitionValue.Escape(a);
        var escapedB = PartitionValue.Escape(b);
        var escapedEmoji = PartitionValue.Escape(emoji);

        Assert.Multiple(() =>
        {
            Assert.That(Encoding.UTF8.GetByteCount(escapedA), Is.LessThanOrEqualTo(PartitionValue.MaxEncodedBytes));
            Assert.That(Encoding.UTF8.GetByteCount(escapedEmoji), Is.LessThanOrEqualTo(PartitionValue.MaxEncodedBytes));
            Assert.That(escapedA, Is.Not.EqualTo(escapedB));
            Assert.That(escapedA, Does.Match("~[0-9a-f]{16}$"));
            Assert.That(escapedEmoji, Does.Not.Contain("/"));
            Assert.That(escapedEmoji, Does.Match("^(🚀%2F)+🚀?~[0-9a-f]{16}$"), "a cut never splits a surrogate pair or an escape");
        });
    }

    /// <summary>Property test: random hostile strings can never produce more than one safe segment under the root.</summary>
    [Test]
    public void Escape_RandomHostileStrings_AlwaysOneSafeSegmentUnderTheRoot([Values(1, 2, 3)] int seed)
    {
        var random = new Random(seed * 7919);
        var root = Path.GetFullPath(Path.Combine(Path.GetTempPath(), "lake-root"));
        for (var n = 0; n < 2000; n++)
        {
            var value = RandomHostileString(random);

            var escaped = PartitionValue.Escape(value);

            var described = $"seed {seed} case {n}: {string.Join(' ', value.Select(c => ((int)c).ToString("X4")))} -> {escaped}";
            Assert.That(escaped, Is.Not.Empty, described);
            Assert.That(escaped, Is.Not.EqualTo(".").And.Not.EqualTo(".."), described);
            Assert.That(escaped[0] == '.' || (escaped[0] == '_' && escaped != PartitionValue.DefaultPartitionName), Is.False, "hidden name: " + described);
            Assert.That(escaped.Any(c => c is '/' or '\\' or '\0' || char.IsControl(c)), Is.False, described);
            Assert.That(() => StrictUtf8.GetByteCount(escaped), Throws.Nothing, "no lone surrogates reach the file system: " + described);
            Assert.That(escaped[^1], Is.Not.EqualTo('.').And.Not.EqualTo(' '), described);
            Assert.That(Encoding.UTF8.GetByteCount(escaped), Is.LessThanOrEqualTo(PartitionValue.MaxEncodedBytes), described);

            var full = Path.GetFullPath(Path.Combine(root, "k=" + escaped, escaped, "part.parquet"));
            Assert.That(full, Does.StartWith(root + Path.DirectorySeparatorChar), described);
            Assert.That(Path.GetRelativePath(root, full).Split(Path.DirectorySeparatorChar), Has.Length.EqualTo(3), described);

            if (!escaped.Contains('~') && value.Length > 0)
            {
                Assert.That(PartitionValue.Unescape(escaped), Is.EqualTo(value), "escaping is reversible, so distinct values never share a directory: " + described);
            }
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly string[] Nasty = ["..", ".", "/", "\\", "\0", "%", "%2F", "~", "=", ":", "\n", "\r", "\u007F", "\u0085", "\u2028", "\u202E", "é", "中", "🚀", "\uD800", "\uDFFF", " ", "_", "*", "?", "|", "<", ">", "\"", "C:", "//", "../", "..\\"];

    private static string RandomHostileString(Random random)
    {
        var builder = new StringBuilder();
        var length = random.Next(0, random.Next(2) == 0 ? 12 : 200);
        for (var i = 0; i < length; i++)
        {
            switch (random.Next(4))
            {
                case 0:
                    builder.Append(Nasty[random.Next(Nasty.Length)]);
                    break;
                case 1:
                    builder.Append((char)random.Next(0, 128));
                    break;
                case 2:
                    builder.Append((char)random.Next(0, 0x10000));
                    break;
                default:
                    builder.Append((char)random.Next('a', 'z' + 1));
                    break;
            }
        }
        return builder.ToString();
    }
}
