using Kawa.Dataflow.Parquet.Format;

namespace Kawa.Dataflow.Tests.Parquet.Format;

public class SnappyEncoderTests
{
    private static IEnumerable<byte[]> Inputs()
    {
        var random = new Random(3);
        yield return [];
        yield return [1, 2, 3];
        yield return new byte[16];
        yield return Enumerable.Range(0, 300_000).Select(i => (byte)(i % 7)).ToArray();
        var noise = new byte[200_000];
        random.NextBytes(noise);
        yield return noise;
        yield return System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Range(0, 20_000).Select(i => $"/api/v1/items/{random.Next(5000)}?page={i % 20};")));
        var mixed = new byte[150_000];
        for (int i = 0; i < mixed.Length; i++) mixed[i] = i % 1000 < 500 ? (byte)random.Next(256) : (byte)(i % 3);
        yield return mixed;
    }

    [TestCaseSource(nameof(Inputs))]
    public void Compress_DecodedByIronSnappy_GivesTheInputBack(byte[] input)
    {
        var output = new byte[SnappyEncoder.MaxCompressedLength(input.Length)];

        int n = SnappyEncoder.Compress(input, output, new int[1 << 14]);
        var decoded = IronSnappy.Snappy.Decode(output.AsSpan(0, n));

        Assert.That(decoded, Is.EqualTo(input));
        Assert.That(n, Is.LessThanOrEqualTo(SnappyEncoder.MaxCompressedLength(input.Length)));
    }

    [Test]
    public void Compress_RepetitiveInput_IsMuchSmaller()
    {
        var input = Enumerable.Range(0, 100_000).Select(i => (byte)(i % 10)).ToArray();
        var output = new byte[SnappyEncoder.MaxCompressedLength(input.Length)];

        int n = SnappyEncoder.Compress(input, output, new int[1 << 14]);

        Assert.That(n, Is.LessThan(input.Length / 10));
    }
}
