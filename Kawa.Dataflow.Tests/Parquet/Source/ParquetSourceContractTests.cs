using Kawa.Dataflow.Parquet.Source;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Infrastructure;
using Kawa.Dataflow.Tests.Parquet.Lake;
using Kawa.Dataflow.Tests.Parquet.Sink;

namespace Kawa.Dataflow.Tests.Parquet.Source;

/// <summary>The core source contract against the Parquet replay source over real files in a temporary lake (two files,
/// so the switch between them is crossed). A replay always ends after its files, so the contract declares
/// <see cref="SourceContract{T}.CanStayOpen"/> = <see langword="false"/> and is held to that instead: an empty lake ends at
/// once. Outcomes are read from the source's counts and redelivery schedule.</summary>
public sealed class ParquetSourceContractTests : SourceContractTests<SinkEvent>
{
    protected override SourceContract<SinkEvent> Contract { get; } = new ParquetContract { CanStayOpen = false };

    private sealed class ParquetContract : SourceContract<SinkEvent>
    {
        protected override async ValueTask<SourceUnderTest<SinkEvent>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var root = new TempDirectory();
            var ids = Enumerable.Range(0, messageCount).Select(i => (long)i).ToArray();
            var half = ids.Length / 2;
            foreach (var file in new[] { ids[..half], ids[half..] }.Where(f => f.Length > 0))
            {
                await ParquetSourceTests.WriteRowsAsync(root, file);
            }

            var time = new FakeTimeProvider();
            var source = new ParquetSource<SinkEvent>(new ParquetSourceOptions { Path = root.Path }, time);
            var observer = new CountedOutcomeObserver<SinkEvent>(
                () => source.Acked,
                () => source.Terminated,
                m => source.ScheduledRedeliveries.Where(r => r.File == m.Topic && r.Index == m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence)).Select(r => (DateTimeOffset?)r.Due).FirstOrDefault(),
                time);
            return new SourceUnderTest<SinkEvent>
            {
                Source = source,
                OutcomeSeen = observer.OutcomeSeen,
                Cleanup = async () =>
                {
                    await source.DisposeAsync();
                    root.Dispose();
                },
            };
        }
    }
}
