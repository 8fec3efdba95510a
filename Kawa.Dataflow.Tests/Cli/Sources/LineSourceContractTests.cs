using System.IO.Pipelines;
using System.Text;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Sources;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;
using Kawa.Dataflow.Tests.Infrastructure;

namespace Kawa.Dataflow.Tests.Cli.Sources;

/// <summary>The core source contract against kawa's line source: a real file read once when the stream must end
/// (<c>file</c>, <c>mode: read</c>), a pipe that stays open when it must wait (<c>stdin</c>). Outcomes are read from the
/// source's own counts and redelivery schedule.</summary>
internal sealed class LineSourceContractTests : SourceContractTests<EventRecord>
{
    private string _dir = null!;

    [SetUp]
    public void SetUp() => _dir = Directory.CreateTempSubdirectory("kawa-lines-contract-").FullName;

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    protected override SourceContract<EventRecord> Contract => new LineContract(_dir);

    private sealed class LineContract(string dir) : SourceContract<EventRecord>
    {
        protected override async ValueTask<SourceUnderTest<EventRecord>> CreateAsync(int messageCount, bool endAfterMessages)
        {
            var text = string.Concat(Enumerable.Range(0, messageCount).Select(i => $"line-{i}\n"));
            var time = new FakeTimeProvider();
            LineSource source;
            if (endAfterMessages)
            {
                var path = Path.Combine(dir, Guid.NewGuid().ToString("N") + ".log");
                await File.WriteAllTextAsync(path, text);
                source = LineSource.OpenFile(path, time);
            }
            else
            {
                // Like standard input with a writer that has not finished.
                var pipe = new Pipe();
                await pipe.Writer.WriteAsync(Encoding.UTF8.GetBytes(text));
                source = new LineSource(pipe.Reader.AsStream(), "stdin", time);
            }

            var observer = new CountedOutcomeObserver<EventRecord>(
                () => source.Acked,
                () => source.Terminated,
                m => source.ScheduledRedeliveries.Where(r => r.LineNumber == (long)m.Attributes.GetOrDefault(MessageAttributeKeys.StreamSequence)).Select(r => (DateTimeOffset?)r.Due).FirstOrDefault(),
                time);
            return new SourceUnderTest<EventRecord> { Source = source, OutcomeSeen = observer.OutcomeSeen, Cleanup = source.DisposeAsync };
        }
    }
}
