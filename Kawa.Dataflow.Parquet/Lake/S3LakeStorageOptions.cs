using Microsoft.Extensions.Options;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>Options of <see cref="S3LakeStorage"/>.</summary>
public sealed class S3LakeStorageOptions
{
    /// <summary>The smallest part S3 accepts (except the last): 5 MiB.</summary>
    public const int MinimumPartSize = 5 * 1024 * 1024;

    /// <summary>The bucket. Required.</summary>
    public string BucketName { get; set; } = "";

    /// <summary>The key prefix of the lake inside the bucket, e.g. <c>lake/events/</c>; a missing trailing <c>/</c> is added. Default: the bucket root.</summary>
    public string Prefix { get; set; } = "";

    /// <summary>This writer's identity (see <see cref="LakeInstanceId"/>). Default: <see langword="null"/>, meaning <see cref="LakeInstanceId.CreateDefault(string)"/> of bucket and prefix.</summary>
    public string? InstanceId { get; set; }

    /// <summary>
    /// Bytes per multipart part; an open file holds at most one part in memory (what it has not uploaded yet, in 16 KiB
    /// chunks). Files that fit
    /// in one part are sent with a single PutObject. At least <see cref="MinimumPartSize"/>. Default: 8 MiB.
    /// </summary>
    public int PartSize { get; set; } = 8 * 1024 * 1024;

    /// <summary>
    /// The longest this writer keeps a file open, from its first part to its commit. Startup cleanup aborts another
    /// instance's pending uploads only when they were started more than twice this long ago, or twice the age their
    /// file name declares if longer (a <c>ParquetDestination</c> declares its storage's in every file name), so writers
    /// with different ages may share a lake. A <c>ParquetDestination</c> on this storage must roll files sooner: its
    /// <c>FileMaxAge</c> must be below this. Default: 1 hour.
    /// </summary>
    public TimeSpan MaxFileAge { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Send <c>If-None-Match: *</c> with the commit so an existing object is never replaced (S3 conditional writes;
    /// stores that do not support it may ignore or reject the header). Default: <see langword="true"/>.
    /// </summary>
    public bool PreventOverwrite { get; set; } = true;

    /// <summary>
    /// Send bodies with <c>aws-chunked</c> streaming signatures. Off by default: the part is in memory anyway, so
    /// signing it whole costs one hash pass, and several S3-compatible stores (s3rver, some older gateways) store the
    /// chunk framing as data. Default: <see langword="false"/>.
    /// </summary>
    public bool UseChunkEncoding { get; set; }

    /// <summary>Every problem with these options, each naming its property; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(BucketName))
        {
            problems.Add($"{nameof(BucketName)} is required.");
        }
        if (Prefix is null)
        {
            problems.Add($"{nameof(Prefix)} must not be null; use \"\" for the bucket root.");
        }
        else if (Prefix.Length > 0 && (Prefix[0] == '/' || Prefix.Contains("//", StringComparison.Ordinal)))
        {
            problems.Add($"{nameof(Prefix)} '{Prefix}' must not start with '/' or contain '//'.");
        }
        if (InstanceId is not null && string.IsNullOrWhiteSpace(InstanceId))
        {
            problems.Add($"{nameof(InstanceId)} must not be blank; leave it null for the default.");
        }
        if (PartSize < MinimumPartSize)
        {
            problems.Add($"{nameof(PartSize)} must be at least {MinimumPartSize} bytes (5 MiB, the S3 minimum); was {PartSize}.");
        }
        if (MaxFileAge <= TimeSpan.Zero)
        {
            problems.Add($"{nameof(MaxFileAge)} must be positive (was {MaxFileAge}).");
        }
        return problems;
    }

    internal void ThrowIfInvalid()
    {
        var problems = Validate();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(nameof(S3LakeStorageOptions), typeof(S3LakeStorageOptions), problems);
        }
    }
}
