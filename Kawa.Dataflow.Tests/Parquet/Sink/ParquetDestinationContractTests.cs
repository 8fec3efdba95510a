using Kawa.Dataflow.Parquet.Lake;
using Kawa.Dataflow.Parquet.Reading;
using Kawa.Dataflow.Parquet.Sink;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Sink;

/// <summary>The reusable destination contract, run against the Parquet sink on a local lake.</summary>
public sealed class ParquetDestinationContractTests : DestinationContractTests<SinkEvent>
{
    protected override DestinationContract<SinkEvent> Contract { get; } = new ParquetContract();

    private sealed class ParquetContract : DestinationContract<SinkEvent>
    {
        protected override Message<SinkEvent> CreateMessage(int index) => SinkTestSupport.Event(index);

        protected override ValueTask<DestinationUnderTest<SinkEvent>> CreateAsync()
        {
            var root = new TempDirectory();
            var storage = new ControlledStorage(SinkTestSupport.Storage(root));
            var destination = new ParquetDestination<SinkEvent>(new ParquetDestinationOptions<SinkEvent>
            {
                Storage = storage,
                KeepAliveInterval = Timeout.InfiniteTimeSpan,
                Batching = new BatchingOptions<SinkEvent> { MaxBatchSize = 2, MaxRetries = 0 },
            });
            return new(new DestinationUnderTest<SinkEvent>
            {
                Destination = destination,
                IsDurable = m => IsCommitted(root, m.Value.Id),
                BreakWrites = () => storage.FailCommit = path => new LakeWriteException(path, LakeWriteFailure.StorageError, $"Lake file '{path}' could not be committed: broken."),
                Cleanup = async () =>
                {
                    await destination.DisposeAsync();
                    root.Dispose();
                },
            });
        }

        private static bool IsCommitted(TempDirectory root, long id)
        {
            foreach (var file in SinkTestSupport.Committed(root))
            {
                using var stream = File.OpenRead(root.Combine(file));
                var reader = ParquetReader.OpenAsync(stream).GetAwaiter().GetResult();
                if (reader.ReadAllAsync<SinkEvent>().GetAwaiter().GetResult().Any(r => r.Id == id))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
