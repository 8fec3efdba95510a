namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// The temporary files and uploads being written anywhere in this process, which no cleanup may remove. Process-wide
/// because two storage objects on one lake in one process share the default instance id. A name is a local file's full
/// path or an S3 upload's bucket and key; the two cannot collide (a full path starts with '/', a bucket name cannot).
/// </summary>
internal static class LakeOpenFiles
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Open = new(StringComparer.Ordinal);

    /// <summary>Registers <paramref name="name"/>; call it before the file or upload exists, so a cleanup running
    /// meanwhile cannot take it for a leftover.</summary>
    public static void Add(string name) => Open.TryAdd(name, 0);

    /// <summary>The file or upload was committed, aborted or failed.</summary>
    public static void Remove(string name) => Open.TryRemove(name, out _);

    /// <summary>Whether a writer in this process has <paramref name="name"/> open now.</summary>
    public static bool Contains(string name) => Open.ContainsKey(name);
}
