using System.Collections.Concurrent;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Cli.Adapters;

/// <summary>
/// Gives each <c>kawa run</c> process writing to one local lake its own lake instance id, held by an exclusive lock on
/// a hidden file <c>.kawa-instance-&lt;id&gt;.lock</c> in the lake root for the life of the process.
/// </summary>
/// <remarks>
/// <para>Why: a lake's startup cleanup deletes every temporary file of its own instance id, whatever its age, and the
/// default id depends only on host, program and lake. Two processes started with the same config (scale-out on one
/// host) would share it, and the second one's cleanup would delete the files the first is still writing.</para>
/// <para>How: without a configured id, the default id is tried first, then <c>&lt;default&gt;-2</c>, <c>-3</c>, … up to
/// <see cref="MaxSlots"/>; the first whose lock is free is taken. A restart after a crash gets the lowest free slot back
/// (the dead process's lock died with it), so its cleanup removes the crashed run's leftovers. A configured id is
/// taken as is; if another live process holds it, the run fails at start naming the id. The lock is an OS file lock
/// (<see cref="FileShare.None"/>, <c>flock</c> on Linux), released when the process dies, however it dies. The lock files
/// start with <c>.</c>, so lake readers ignore them, and cleanup never touches them.</para>
/// </remarks>
internal static class LakeInstanceSlots
{
    /// <summary>The most processes of one program on one host that may share a lake without configured ids.</summary>
    public const int MaxSlots = 64;

    // Held until the process exits: a lake instance id belongs to this process for as long as it runs.
    private static readonly ConcurrentBag<FileStream> s_held = [];

    /// <summary>Takes an instance id for the local lake at <paramref name="root"/>.</summary>
    /// <param name="root">The lake's root directory (created if missing).</param>
    /// <param name="configured">The configured id, or <see langword="null"/> for the default.</param>
    /// <exception cref="InvalidOperationException">The configured id, or every slot, is held by other live processes.</exception>
    public static string Acquire(string root, string? configured)
    {
        Directory.CreateDirectory(root);
        var baseId = LakeInstanceId.Sanitize(configured ?? LakeInstanceId.CreateDefault(root));
        for (var slot = 1; slot <= (configured is null ? MaxSlots : 1); slot++)
        {
            var suffix = slot == 1 ? "" : "-" + slot.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var id = baseId.Length + suffix.Length > LakeInstanceId.MaxLength ? baseId[..(LakeInstanceId.MaxLength - suffix.Length)] + suffix : baseId + suffix;
            try
            {
                s_held.Add(new FileStream(Path.Combine(root, $".kawa-instance-{id}.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
                return id;
            }
            catch (IOException) when (File.Exists(Path.Combine(root, $".kawa-instance-{id}.lock")))
            {
                // Held by another live process: try the next slot.
            }
        }

        throw new InvalidOperationException(configured is null
            ? $"all {MaxSlots} lake instance ids of lake '{root}' are held by other running processes"
            : $"lake instance id '{baseId}' of lake '{root}' is held by another running process; give each process writing to this lake its own pipeline.destination.instanceId (or leave it out to get a free one)");
    }
}
