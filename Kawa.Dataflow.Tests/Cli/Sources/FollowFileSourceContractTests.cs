using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Sources;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Sources;

/// <summary>The core source contract against kawa's followed file on a real file and offset file. It follows like
/// <c>tail -F</c> and never ends on its own, so the contract declares <see cref="SourceContract{T}.CanEnd"/> =
/// <see langword="false"/> and is held to that instead: after its last line a receive keeps waiting until cancelled
/// (that appended lines are then delivered is <see cref="FollowFileSourceTests.Receive_LinesAppendedAfterEndOfFile_AreDelivered"/>).</summary>
internal sealed class FollowFileSourceContractTests : SourceContractTests<EventRecord>
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-follow-contract-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    protected override SourceContract<EventRecord> Contract => new FollowContract(_dir) { CanEnd = false };

    private sealed class FollowContract(string dir) : SourceContract<EventRecord>
    {
        protected override async ValueTask<SourceUnderTest<EventRecord>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var name = Guid.NewGuid().ToString("N");
            var path = Path.Combine(dir, name + ".log");
            await File.WriteAllTextAsync(path, string.Concat(Enumerable.Range(0, messageCount).Select(i => $"line-{i}\n")));

            // A frozen clock: redelivery delays are exact, and at end of file the source waits on its poll timer, which
            // only the receive's cancellation ends.
            var time = new FakeTimeProvider();
            var source = new FollowFileSource(path, Path.Combine(dir, name + ".offset"), time);
            var observer = new CountedOutcomeObserver<EventRecord>(
                () => source.Acked,
                () => source.Terminated,
                m => source.ScheduledRedeliveries.Where(r => r.LineNumber == (long)m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence)).Select(r => (DateTimeOffset?)r.Due).FirstOrDefault(),
                time);
            return new SourceUnderTest<EventRecord> { Source = source, OutcomeSeen = observer.OutcomeSeen, Cleanup = source.DisposeAsync };
        }
    }
}
