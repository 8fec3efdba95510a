namespace Kawa.Dataflow;

/// <summary>Raises a shared high-water mark (a peak kept for tests and monitoring) without a lock.</summary>
internal static class HighWaterMark
{
    /// <summary>Sets <paramref name="mark"/> to <paramref name="value"/> if that is higher, against concurrent raises.</summary>
    public static void Raise(ref long mark, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref mark)) && Interlocked.CompareExchange(ref mark, value, seen) != seen)
        {
        }
    }

    /// <inheritdoc cref="Raise(ref long, long)"/>
    public static void Raise(ref int mark, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref mark)) && Interlocked.CompareExchange(ref mark, value, seen) != seen)
        {
        }
    }
}
