using System.Security.Cryptography;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// Temporary file names: <c>.&lt;final name&gt;.tmp-&lt;instance&gt;-&lt;random&gt;</c>, in the final file's directory.
/// </summary>
/// <remarks>
/// The leading dot hides them from DuckDB, Spark, Hive and Trino (which skip names starting with <c>.</c> or <c>_</c>),
/// and they never end in <c>.parquet</c>. The instance id (no dots, see <see cref="LakeInstanceId"/>) lets startup
/// cleanup tell its own leftovers from a live writer's.
/// </remarks>
internal static class LakeTempNames
{
    private const string Marker = ".tmp-";

    public static string Create(string finalFileName, string instanceId)
    {
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return $".{finalFileName}{Marker}{instanceId}-{Convert.ToHexStringLower(random)}";
    }

    public static bool IsTemporary(ReadOnlySpan<char> fileName) =>
        fileName.Length > 1 && fileName[0] == '.' && fileName.LastIndexOf(Marker) > 0;

    /// <summary>The instance id inside a temporary name, or <see langword="null"/> if it is not one of ours.</summary>
    public static string? InstanceOf(string fileName)
    {
        if (!IsTemporary(fileName))
        {
            return null;
        }
        var start = fileName.LastIndexOf(Marker, StringComparison.Ordinal) + Marker.Length;
        var end = fileName.LastIndexOf('-');
        return end > start ? fileName[start..end] : null;
    }
}
