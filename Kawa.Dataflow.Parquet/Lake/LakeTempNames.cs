using System.Security.Cryptography;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// Temporary file names: <c>.&lt;final name&gt;.tmp-&lt;instance&gt;-&lt;random&gt;.a&lt;seconds&gt;</c>, in the final
/// file's directory.
/// </summary>
/// <remarks>
/// The leading dot hides them from DuckDB, Spark, Hive and Trino (which skip names starting with <c>.</c> or <c>_</c>),
/// and they never end in <c>.parquet</c>. The instance id (no dots, see <see cref="LakeInstanceId"/>) lets startup
/// cleanup tell its own leftovers from a live writer's; the last token declares the writer's
/// <see cref="ILakeStorage.MaxFileAge"/> (see <see cref="LakeDeclaredAge"/>), so a cleaner with a shorter age spares it.
/// Names of the earlier format, <c>.&lt;final name&gt;.tmp-&lt;instance&gt;-&lt;random&gt;</c>, are still recognised;
/// they declare no age.
/// </remarks>
internal static class LakeTempNames
{
    private const string Marker = ".tmp-";

    public static string Create(string finalFileName, string instanceId, TimeSpan maxFileAge)
    {
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        return $".{finalFileName}{Marker}{instanceId}-{Convert.ToHexStringLower(random)}.{LakeDeclaredAge.Format(maxFileAge)}";
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

    /// <summary>
    /// The <see cref="ILakeStorage.MaxFileAge"/> a temporary name declares, or <see langword="null"/> if it is not a
    /// temporary name, has the earlier format (no age), or its age token is malformed.
    /// </summary>
    public static TimeSpan? DeclaredAgeOf(ReadOnlySpan<char> fileName)
    {
        if (!IsTemporary(fileName))
        {
            return null;
        }
        var start = fileName.LastIndexOf(Marker) + Marker.Length;
        var dash = fileName.LastIndexOf('-');
        if (dash <= start)
        {
            return null;
        }
        var tail = fileName[(dash + 1)..]; // <random>.a<seconds>, or <random> in the earlier format
        var dot = tail.IndexOf('.');
        return dot > 0 && LakeDeclaredAge.TryParse(tail[(dot + 1)..], out var age) ? age : null;
    }
}
