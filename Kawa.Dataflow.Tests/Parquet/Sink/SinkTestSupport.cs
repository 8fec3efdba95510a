using System.Collections.Concurrent;
using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Tests.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>A row type for the sink tests.</summary>
public sealed class SinkEvent
{
    public long Id { get; set; }

    public string Host { get; set; } = "";

    public DateTime Ts { get; set; }
}

internal static class SinkTestSupport
{
    public static readonly DateTime Start = new(2024, 5, 1, 10, 0, 0, DateTimeKind.Utc);

    /// <summary>A local lake in <paramref name="root"/>; <paramref name="maxFileAge"/> (default 1 hour) bounds the sink's FileMaxAge;
    /// <paramref name="bufferSize"/> (default 64 KiB) is each open file's write buffer, which counts against the sink's memory budget.</summary>
    public static LocalLakeStorage Storage(TempDirectory root, TimeSpan? maxFileAge = null, int? bufferSize = null) =>
        new(new LocalLakeStorageOptions
        {
            RootPath = root.Path, InstanceId = "sink-test", Fsync = FsyncMode.None, MaxFileAge = maxFileAge ?? TimeSpan.FromHours(1),
            BufferSize = bufferSize ?? new LocalLakeStorageOptions().BufferSize,
        });

    public static Message<SinkEvent> Event(long id, string host = "h", int minute = 0) =>
        new(new SinkEvent { Id = id, Host = host, Ts = Start.AddMinutes(minute) }, Key: host);

    /// <summary>Committed Parquet files (no hidden temporaries), relative, sorted.</summary>
    public static string[] Committed(TempDirectory root) => root.AllFiles().Where(f => f.EndsWith(".parquet", StringComparison.Ordinal) && !Path.GetFileName(f).StartsWith('.')).ToArray();

    public static async Task<List<SinkEvent>> ReadAllAsync(TempDirectory root)
    {
        var rows = new List<SinkEvent>();
        foreach (var file in Committed(root))
        {
            await using var reader = await ParquetReader.OpenAsync(root.Combine(file));
            rows.AddRange(await reader.ReadAllAsync<SinkEvent>());
        }

        return rows;
    }
}

/// <summary>An <see cref="ILakeStorage"/> decorator whose commits can be held, failed or observed.</summary>
internal sealed class ControlledStorage(ILakeStorage inner) : ILakeStorage
{
    public ConcurrentQueue<string> CommitLog { get; } = new();

    /// <summary>When set, every commit waits for it (and honours its token).</summary>
    public TaskCompletionSource? Gate { get; set; }

    /// <summary>Completes when a commit starts waiting on <see cref="Gate"/>.</summary>
    public TaskCompletionSource CommitEntered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>When set and returning an exception, commits throw it (after aborting, as a real storage does).</summary>
    public Func<string, Exception?>? FailCommit { get; set; }

    public string InstanceId => inner.InstanceId;

    public TimeSpan MaxFileAge => inner.MaxFileAge;

    public async ValueTask<ILakeFile> CreateAsync(string relativePath, CancellationToken cancellationToken = default) =>
        new File(this, await inner.CreateAsync(relativePath, cancellationToken));

    public IAsyncEnumerable<LakeFileInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

    public ValueTask<bool> DeleteAsync(string relativePath, CancellationToken cancellationToken = default) => inner.DeleteAsync(relativePath, cancellationToken);

    public ValueTask<LakeCleanupResult> CleanupAsync(CancellationToken cancellationToken = default) => inner.CleanupAsync(cancellationToken);

    private sealed class File(ControlledStorage owner, ILakeFile inner) : ILakeFile
    {
        public string RelativePath => inner.RelativePath;

        public Stream Stream => inner.Stream;

        public long BytesWritten => inner.BytesWritten;

        public async ValueTask CommitAsync(CancellationToken cancellationToken = default)
        {
            if (owner.Gate is { } gate)
            {
                owner.CommitEntered.TrySetResult();
                try
                {
                    await gate.Task.WaitAsync(cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    await inner.AbortAsync();
                    throw;
                }
            }

            if (owner.FailCommit?.Invoke(inner.RelativePath) is { } failure)
            {
                await inner.AbortAsync();
                throw failure;
            }

            await inner.CommitAsync(cancellationToken);
            owner.CommitLog.Enqueue(inner.RelativePath);
        }

        public ValueTask AbortAsync() => inner.AbortAsync();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
