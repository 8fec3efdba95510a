using System.IO.Compression;

namespace Kawa.Dataflow.Parquet.Format;

/// <summary>Page compression for the codecs this library implements (UNCOMPRESSED, SNAPPY, GZIP, BROTLI).</summary>
internal static class Compression
{
    // Per-thread hash table of the Snappy encoder (64 KiB), reused across pages.
    [ThreadStatic]
    private static int[]? SnappyTable;

    /// <summary>Compresses <paramref name="input"/> into <paramref name="output"/> (cleared first) and returns the compressed bytes.</summary>
    public static ReadOnlySpan<byte> Compress(CompressionCodec codec, ReadOnlySpan<byte> input, ByteBuffer output)
    {
        output.Clear();
        switch (codec)
        {
            case CompressionCodec.Uncompressed:
                return input;
            case CompressionCodec.Snappy:
                {
                    var dst = output.GetFreeSpan(SnappyEncoder.MaxCompressedLength(input.Length));
                    int n = SnappyEncoder.Compress(input, dst, SnappyTable ??= new int[1 << 14]);
                    output.Advance(n);
                    return output.WrittenSpan;
                }

            case CompressionCodec.Gzip:
                {
                    using var ms = new MemoryStream(input.Length / 2 + 64);
                    using (var gz = new GZipStream(ms, CompressionLevel.Optimal, leaveOpen: true))
                    {
                        gz.Write(input);
                    }

                    output.Write(ms.GetBuffer().AsSpan(0, (int)ms.Length));
                    return output.WrittenSpan;
                }

            case CompressionCodec.Brotli:
                {
                    int max = BrotliEncoder.GetMaxCompressedLength(input.Length);
                    var dst = output.GetFreeSpan(max);
                    if (!BrotliEncoder.TryCompress(input, dst, out int n, quality: 5, window: 22))
                    {
                        throw new InvalidOperationException("Brotli compression of a Parquet page failed.");
                    }

                    output.Advance(n);
                    return output.WrittenSpan;
                }

            default:
                throw new NotSupportedException($"Parquet compression codec {codec} is not supported by Kawa.Dataflow.Parquet (supported: UNCOMPRESSED, SNAPPY, GZIP, BROTLI).");
        }
    }

    /// <summary>Decompresses a page body of known uncompressed size.</summary>
    public static byte[] Decompress(CompressionCodec codec, ReadOnlySpan<byte> input, int uncompressedSize)
    {
        switch (codec)
        {
            case CompressionCodec.Uncompressed:
                return input.ToArray();
            case CompressionCodec.Snappy:
                {
                    var result = IronSnappy.Snappy.Decode(input);
                    return result;
                }

            case CompressionCodec.Gzip:
                {
                    var result = new byte[uncompressedSize];
                    using var ms = new MemoryStream(input.ToArray());
                    using var gz = new GZipStream(ms, CompressionMode.Decompress);
                    gz.ReadExactly(result);
                    return result;
                }

            case CompressionCodec.Brotli:
                {
                    var result = new byte[uncompressedSize];
                    if (!BrotliDecoder.TryDecompress(input, result, out int n) || n != uncompressedSize)
                    {
                        throw new InvalidDataException("A BROTLI-compressed Parquet page did not decompress to its declared size; the page is corrupt.");
                    }

                    return result;
                }

            case CompressionCodec.Zstd:
                throw new NotSupportedException("This Parquet file uses ZSTD compression, which Kawa.Dataflow.Parquet does not support (no zstd implementation is available); supported codecs: UNCOMPRESSED, SNAPPY, GZIP, BROTLI.");
            default:
                throw new NotSupportedException($"This Parquet file uses compression codec {codec}, which Kawa.Dataflow.Parquet does not support; supported codecs: UNCOMPRESSED, SNAPPY, GZIP, BROTLI.");
        }
    }
}
