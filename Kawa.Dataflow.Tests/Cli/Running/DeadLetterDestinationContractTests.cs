using System.Text;
using Kawa.Dataflow.Cli.Adapters;
using Kawa.Dataflow.Cli.Configuration;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Running;
using Kawa.Dataflow.Testing;
using Kawa.Dataflow.Tests.Cli.Adapters;
using Kawa.Dataflow.Tests.Contracts;
using Microsoft.Extensions.Logging.Abstractions;

namespace Kawa.Dataflow.Tests.Cli.Running;

/// <summary>The core destination contract against kawa's dead-letter adapter (<c>pipeline.deadLetter</c>) over a
/// <c>parquet</c> destination on a real local lake: a dead letter is durable once a committed file holds a row with its
/// original's key, and the adapter must pass the token through without settling it itself. Writes are broken as for the
/// plain parquet destination: a file where the lake's directory was.</summary>
internal sealed class DeadLetterDestinationContractTests : DestinationContractTests<DeadLetter<EventRecord>>
{
    protected override DestinationContract<DeadLetter<EventRecord>> Contract { get; } = new DeadLetterContract();

    private sealed class DeadLetterContract : DestinationContract<DeadLetter<EventRecord>>
    {
        protected override Message<DeadLetter<EventRecord>> CreateMessage(int index)
        {
            var original = new Message<EventRecord>(new EventRecord(Encoding.UTF8.GetBytes($"event-{index}")), Key: $"k{index}");
            var record = new DeadLetter<EventRecord>(original, "handler:parse", "System.FormatException", $"bad event {index}", 1, DateTimeOffset.UnixEpoch);
            return new Message<DeadLetter<EventRecord>>(record, Key: original.Key);
        }

        protected override async ValueTask<DestinationUnderTest<DeadLetter<EventRecord>>> CreateAsync()
        {
            var root = Directory.CreateTempSubdirectory("kawa-dead-letter-contract-").FullName;
            var lake = Path.Combine(root, "lake");
            var inner = await ParquetEventDestination.CreateAsync(
                new ParquetDestinationOptions { Type = "parquet", Path = lake, Fsync = false },
                deadLetter: true,
                TimeProvider.System,
                NullLoggerFactory.Instance,
                CancellationToken.None);
            return new DestinationUnderTest<DeadLetter<EventRecord>>
            {
                Destination = new DeadLetterDestination(inner),
                IsDurable = m => ParquetEventDestinationContractTests.ParquetEventContract.CommittedKeys(lake).Contains(m.Value.Original.Key),
                BreakWrites = () =>
                {
                    Directory.Move(lake, lake + ".moved");
                    File.WriteAllText(lake, "not a directory");
                },
                Cleanup = async () =>
                {
                    try
                    {
                        await ((IAsyncDisposable)inner).DisposeAsync();
                    }
                    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                    {
                        // A broken lake may fail the last commit again at dispose.
                    }

                    Directory.Delete(root, recursive: true);
                },
            };
        }
    }
}
