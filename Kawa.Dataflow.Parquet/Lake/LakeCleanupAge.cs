namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>The age rule of startup cleanup, shared by the storages.</summary>
internal static class LakeCleanupAge
{
    /// <summary>
    /// The instant before which another instance's temporary data counts as dead: <paramref name="now"/> minus twice
    /// <paramref name="maxFileAge"/>, or <see cref="DateTimeOffset.MinValue"/> when that lies before the calendar's start.
    /// </summary>
    public static DateTimeOffset Cutoff(DateTimeOffset now, TimeSpan maxFileAge)
    {
        var twice = maxFileAge >= TimeSpan.MaxValue / 2 ? TimeSpan.MaxValue : 2 * maxFileAge;
        return now - DateTimeOffset.MinValue <= twice ? DateTimeOffset.MinValue : now - twice;
    }

    /// <summary>
    /// The cutoff for one leftover: twice the larger of the cleaner's <paramref name="ownMaxFileAge"/> and the age its
    /// writer declared in its name (<see langword="null"/> for a name that declares none, which follows the cleaner's age).
    /// </summary>
    public static DateTimeOffset Cutoff(DateTimeOffset now, TimeSpan ownMaxFileAge, TimeSpan? declaredMaxFileAge) =>
        Cutoff(now, declaredMaxFileAge is { } declared && declared > ownMaxFileAge ? declared : ownMaxFileAge);
}
