using Kawa.Dataflow.Cli.Destinations;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Contracts;

namespace Kawa.Dataflow.Tests.Cli.Destinations;

/// <summary>The core destination contract against the <c>stdout</c> destination writing JSON lines to a real file (what
/// <c>kawa ... &gt; out.jsonl</c> gives it): durable means the file holds the line when read back; writes are broken by
/// closing the file under it.</summary>
internal sealed class StdoutDestinationContractTests : DestinationContractTests<EventRecord>
{
    protected override DestinationContract<EventRecord> Contract { get; } = new StdoutContract();

    private sealed class StdoutContract : DestinationContract<EventRecord>
    {
        protected override Message<EventRecord> CreateMessage(int index) => new(new EventRecord().Set("id", $"e{index}"));

        protected override ValueTask<DestinationUnderTest<EventRecord>> CreateAsync()
        {
            var path = Path.Combine(Path.GetTempPath(), "kawa-stdout-contract-" + Guid.NewGuid().ToString("N") + ".jsonl");
            var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            var destination = new StdoutDestination(file, "json");
            return new(new DestinationUnderTest<EventRecord>
            {
                Destination = destination,
                IsDurable = m =>
                {
                    using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
                    var expected = m.Value.TryGet("id", out var id) ? $"{{\"id\":\"{id.AsString()}\"}}" : throw new InvalidOperationException("no id");
                    return reader.ReadToEnd().Split('\n').Contains(expected);
                },
                BreakWrites = file.Dispose,
                Cleanup = () =>
                {
                    destination.Dispose();
                    file.Dispose();
                    File.Delete(path);
                    return default;
                },
            });
        }
    }
}
