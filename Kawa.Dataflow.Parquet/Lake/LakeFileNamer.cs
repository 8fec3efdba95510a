using System.Globalization;
using System.Security.Cryptography;

namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>
/// Names data files so that no two writers, and no two runs of one writer, ever pick the same name:
/// <c>part-&lt;UTC yyyyMMddTHHmmssfffZ&gt;-&lt;instance&gt;-&lt;seq&gt;-&lt;random&gt;[.a&lt;seconds&gt;].&lt;codec&gt;.parquet</c>.
/// </summary>
/// <remarks>
/// The instance id separates concurrent writers; the sequence (process-wide, so two sinks in one process never
/// collide) separates files of one run; the timestamp and 32 random bits separate runs of the same instance, even
/// when a restart reuses a millisecond and the sequence starts again. Names sort by creation time within an instance.
/// A namer created with a max file age puts it in every name (<c>.a</c> and whole seconds, rounded up, e.g.
/// <c>.a7200</c>): an S3 upload's key is its final name, so that is where <see cref="S3LakeStorage.CleanupAsync"/>
/// reads the age the writer declared (see <see cref="ILakeStorage.CleanupAsync"/>). Pass the storage's
/// <see cref="ILakeStorage.MaxFileAge"/>, as <c>ParquetDestination</c> does. Safe for concurrent use.
/// </remarks>
public sealed class LakeFileNamer
{
    private const string Prefix = "part-";
    private const string Suffix = ".parquet";
    private const string TimestampFormat = "yyyyMMdd'T'HHmmssfff'Z'";
    private const int TimestampLength = 19;

    private static long s_processSequence;

    private readonly TimeProvider _timeProvider;
    private readonly Func<long> _nextSequence;
    private readonly string _ageToken;

    /// <summary>Creates a namer for <paramref name="instanceId"/> whose names declare no max file age.</summary>
    /// <param name="instanceId">The writer's id; sanitized with <see cref="LakeInstanceId.Sanitize"/>.</param>
    /// <param name="timeProvider">The clock for the timestamp. Default: <see cref="TimeProvider.System"/>.</param>
    /// <remarks>Another instance's cleanup applies its own max file age to this writer's pending S3 uploads; prefer
    /// <see cref="LakeFileNamer(string, TimeSpan, TimeProvider?)"/>.</remarks>
    public LakeFileNamer(string instanceId, TimeProvider? timeProvider = null)
        : this(instanceId, null, timeProvider, static () => Interlocked.Increment(ref s_processSequence))
    {
    }

    /// <summary>Creates a namer for <paramref name="instanceId"/> whose names declare <paramref name="maxFileAge"/>.</summary>
    /// <param name="instanceId">The writer's id; sanitized with <see cref="LakeInstanceId.Sanitize"/>.</param>
    /// <param name="maxFileAge">The storage's <see cref="ILakeStorage.MaxFileAge"/>; positive.</param>
    /// <param name="timeProvider">The clock for the timestamp. Default: <see cref="TimeProvider.System"/>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxFileAge"/> is zero or negative.</exception>
    public LakeFileNamer(string instanceId, TimeSpan maxFileAge, TimeProvider? timeProvider = null)
        : this(instanceId, maxFileAge, timeProvider, static () => Interlocked.Increment(ref s_processSequence))
    {
    }

    /// <summary>For tests: a sequence source that can start over, as a restarted process's does.</summary>
    internal LakeFileNamer(string instanceId, TimeProvider? timeProvider, Func<long> nextSequence)
        : this(instanceId, null, timeProvider, nextSequence)
    {
    }

    /// <summary>For tests: a sequence source that can start over, as a restarted process's does.</summary>
    internal LakeFileNamer(string instanceId, TimeSpan? maxFileAge, TimeProvider? timeProvider, Func<long> nextSequence)
    {
        if (maxFileAge is { } age)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(age, TimeSpan.Zero, nameof(maxFileAge));
        }
        InstanceId = LakeInstanceId.Sanitize(instanceId);
        MaxFileAge = maxFileAge;
        _ageToken = maxFileAge is { } declared ? "." + LakeDeclaredAge.Format(declared) : "";
        _timeProvider = timeProvider ?? TimeProvider.System;
        _nextSequence = nextSequence;
    }

    /// <summary>The sanitized instance id in every name.</summary>
    public string InstanceId { get; }

    /// <summary>The max file age every name declares, or <see langword="null"/> if names declare none.</summary>
    public TimeSpan? MaxFileAge { get; }

    /// <summary>The next file name, e.g. <c>part-20240501T101112123Z-host_a-000001-9f3a02bc.a7200.snappy.parquet</c>
    /// (without <c>.a7200</c> when the namer declares no age).</summary>
    /// <param name="codec">The compression codec's name: lowercase ASCII letters and digits, e.g. <c>snappy</c>, <c>zstd</c>, <c>uncompressed</c>.</param>
    /// <exception cref="ArgumentException"><paramref name="codec"/> is empty or has other characters.</exception>
    public string Next(string codec)
    {
        ArgumentException.ThrowIfNullOrEmpty(codec);
        foreach (var c in codec)
        {
            if (!char.IsAsciiLetterLower(c) && !char.IsAsciiDigit(c))
            {
                throw new ArgumentException($"Codec '{codec}' must be lowercase ASCII letters and digits (e.g. 'snappy').", nameof(codec));
            }
        }
        var timestamp = _timeProvider.GetUtcNow().UtcDateTime.ToString(TimestampFormat, CultureInfo.InvariantCulture);
        Span<byte> random = stackalloc byte[4];
        RandomNumberGenerator.Fill(random);
        var sequence = _nextSequence();
        return $"{Prefix}{timestamp}-{InstanceId}-{sequence.ToString("D6", CultureInfo.InvariantCulture)}-{Convert.ToHexStringLower(random)}{_ageToken}.{codec}{Suffix}";
    }

    /// <summary>Reads the parts of a name made by <see cref="Next"/>.</summary>
    /// <param name="fileName">A file name (no directory).</param>
    /// <param name="instanceId">The writer's instance id.</param>
    /// <param name="createdAt">The timestamp in the name (UTC, millisecond precision).</param>
    /// <param name="sequence">The writer's sequence number.</param>
    /// <returns><see langword="false"/> if the name does not have this form.</returns>
    public static bool TryParse(string fileName, out string instanceId, out DateTimeOffset createdAt, out long sequence)
    {
        instanceId = "";
        createdAt = default;
        sequence = 0;
        if (fileName is null || !fileName.StartsWith(Prefix, StringComparison.Ordinal) || !fileName.EndsWith(Suffix, StringComparison.Ordinal)
            || fileName.Length < Prefix.Length + TimestampLength + 1)
        {
            return false;
        }
        if (!DateTime.TryParseExact(fileName.AsSpan(Prefix.Length, TimestampLength), TimestampFormat, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal, out var timestamp)
            || fileName[Prefix.Length + TimestampLength] != '-')
        {
            return false;
        }
        var rest = fileName[(Prefix.Length + TimestampLength + 1)..];
        var dot = rest.IndexOf('.', StringComparison.Ordinal);
        if (dot < 0)
        {
            return false;
        }
        var body = rest[..dot];
        var randomDash = body.LastIndexOf('-');
        var sequenceDash = randomDash > 0 ? body.LastIndexOf('-', randomDash - 1) : -1;
        if (sequenceDash <= 0
            || !long.TryParse(body.AsSpan(sequenceDash + 1, randomDash - sequenceDash - 1), NumberStyles.None, CultureInfo.InvariantCulture, out sequence))
        {
            return false;
        }
        instanceId = body[..sequenceDash];
        createdAt = new DateTimeOffset(timestamp, TimeSpan.Zero);
        return true;
    }

    /// <summary>
    /// The max file age a name made by <see cref="Next"/> declares, or <see langword="null"/> if it is not such a name,
    /// declares none (a namer without an age, or the format before ages were declared), or its age token is malformed.
    /// </summary>
    internal static TimeSpan? DeclaredAgeOf(string fileName)
    {
        if (!TryParse(fileName, out _, out _, out _))
        {
            return null;
        }
        // After the body: "a<seconds>.<codec>.parquet", or "<codec>.parquet" without an age (a codec has no dot).
        var afterBody = fileName.AsSpan(fileName.IndexOf('.', Prefix.Length) + 1);
        var dot = afterBody.IndexOf('.');
        if (dot <= 0)
        {
            return null;
        }
        var rest = afterBody[dot..]; // ".<codec>.parquet" when the token before it is an age
        return rest.Length > Suffix.Length + 1 && rest[1..].IndexOf('.') == rest.Length - Suffix.Length - 1
            && LakeDeclaredAge.TryParse(afterBody[..dot], out var age) ? age : null;
    }
}
