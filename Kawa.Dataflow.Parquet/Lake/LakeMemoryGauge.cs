namespace Kawa.Dataflow.Parquet.Lake;

/// <summary>Bytes of memory a storage's open files hold now, and the most they ever held (for tests and monitoring).</summary>
internal sealed class LakeMemoryGauge
{
    private long _current;
    private long _peak;

    public long Current => Interlocked.Read(ref _current);

    public long Peak => Interlocked.Read(ref _peak);

    public void Add(long delta)
    {
        HighWaterMark.Raise(ref _peak, Interlocked.Add(ref _current, delta));
    }
}
