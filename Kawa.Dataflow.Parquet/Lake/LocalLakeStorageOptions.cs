using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>Options of <see cref="LocalLakeStorage"/>.</summary>
public sealed class LocalLakeStorageOptions
{
    /// <summary>The lake's root directory (created if missing). Required.</summary>
    public string RootPath { get; set; } = "";

    /// <summary>
    /// This writer's identity, stable across restarts and unique among concurrent writers (see <see cref="LakeInstanceId"/>).
    /// Default: <see langword="null"/>, meaning <see cref="LakeInstanceId.CreateDefault(string)"/> of the root path.
    /// </summary>
    public string? InstanceId { get; set; }

    /// <summary>How commits reach the disk. Default: <see cref="FsyncMode.Full"/>.</summary>
    public FsyncMode Fsync { get; set; } = FsyncMode.Full;

    /// <summary>
    /// The longest this writer keeps a file open, from its creation to its commit; every temporary name declares it.
    /// Startup cleanup removes another instance's temporary files only when they were last written more than twice
    /// this long ago, or twice the age their name declares if longer, so writers with different ages may share a lake.
    /// A <c>ParquetDestination</c> on this storage must roll files sooner: its <c>FileMaxAge</c> must be below this.
    /// Default: 1 hour.
    /// </summary>
    public TimeSpan MaxFileAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The write buffer in bytes between the stream and the file (0 = unbuffered). Default: 65536.</summary>
    /// <remarks>Each open file holds it until committed or aborted; <c>ParquetDestination</c> counts it against its
    /// <c>MemoryBudgetBytes</c>.</remarks>
    public int BufferSize { get; set; } = 64 * 1024;

    /// <summary>Every problem with these options, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(RootPath))
        {
            problems.Add($"{nameof(RootPath)} is required: the lake's root directory.");
        }
        if (InstanceId is not null && string.IsNullOrWhiteSpace(InstanceId))
        {
            problems.Add($"{nameof(InstanceId)} must not be blank; leave it null for the default.");
        }
        if (!Enum.IsDefined(Fsync))
        {
            problems.Add($"{nameof(Fsync)} has the undefined value {(int)Fsync}.");
        }
        if (MaxFileAge <= TimeSpan.Zero)
        {
            problems.Add($"{nameof(MaxFileAge)} must be positive (was {MaxFileAge}).");
        }
        if (BufferSize < 0)
        {
            problems.Add($"{nameof(BufferSize)} must be 0 or more (was {BufferSize}).");
        }
        return problems;
    }

    internal void ThrowIfInvalid()
    {
        var problems = Validate();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(nameof(LocalLakeStorageOptions), typeof(LocalLakeStorageOptions), problems);
        }
    }
}
